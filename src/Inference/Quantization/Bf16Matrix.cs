using System.Runtime.InteropServices;
using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// A weight kept in bfloat16, rows (out, in) zero-padded to whole kernel steps and laid out as
/// <see cref="Bf16Kernels.Offset"/> says; products run <see cref="Bf16Kernels"/> on float32 activations,
/// and products of <see cref="WidenedFromRows"/> rows or more (prompts) widen the weight to float32 and
/// run MKL's float32 GEMM (<see cref="ServingMatrix.MultiplyWidened"/>). MKL's bf16 GEMM reads only plain
/// row-major matrices, and would round the activations to bfloat16; the interleaved layout is what
/// lets a decode step read the weights near the memory's rate.
/// </summary>
public sealed unsafe class Bf16Matrix : IServingMatrix
{
    private readonly int _stride;
    private ushort* _weights;

    private Bf16Matrix(int inputs, int outputs, int stride, ushort* weights)
    {
        Inputs = inputs;
        Outputs = outputs;
        _stride = stride;
        _weights = weights;
    }

    public int Inputs { get; }

    public int Outputs { get; }

    public WeightFormat Format => WeightFormat.BFloat16;

    public long Bytes => (long)Outputs * _stride * sizeof(ushort);

    /// <summary>Rounds a weight stored (in, out), or (out, in) when <paramref name="storedAsOutByIn"/>, to bfloat16.</summary>
    public static Bf16Matrix Convert(Tensor weight, bool storedAsOutByIn)
    {
        using Tensor source = ServingMatrix.OutByIn(weight, storedAsOutByIn);           // (out, in)
        int outputs = (int)source.shape[0], inputs = (int)source.shape[1];
        int stride = Bf16Kernels.PaddedLength(inputs);
        var weights = (ushort*)NativeMemory.AlignedAlloc((nuint)((long)outputs * stride * sizeof(ushort)), 64);
        float* values = (float*)TensorMemory.DataPointer(source);
        Parallel.For(0, outputs, o =>
        {
            float* row = values + (long)o * inputs;
            for (int k = 0; k < stride; k++)
            {
                weights[Bf16Kernels.Offset(o, k, stride, outputs)] = k < inputs ? Bf16Kernels.FromSingle(row[k]) : (ushort)0;
            }
        });
        return new Bf16Matrix(inputs, outputs, stride, weights);
    }

    /// <summary>The weight as the products see it, (out, in) float32.</summary>
    public Tensor? Dequantize()
    {
        ObjectDisposedException.ThrowIf(_weights is null, this);
        Tensor result = empty([Outputs, Inputs], ScalarType.Float32, CPU);            // (out, in)
        float* values = (float*)TensorMemory.DataPointer(result);
        ushort* weights = _weights;
        int inputs = Inputs, outputs = Outputs, stride = _stride;
        Parallel.For(0, outputs, o =>
        {
            float* row = values + (long)o * inputs;
            for (int k = 0; k < inputs; k++)
            {
                row[k] = Bf16Kernels.ToSingle(weights[Bf16Kernels.Offset(o, k, stride, outputs)]);
            }
        });
        return result;
    }

    /// <summary>Rows from which a product widens the weight to float32 and runs MKL's GEMM: where the widening costs less than MKL gains.</summary>
    internal const int WidenedFromRows = 128;

    /// <summary>The rows of the product in flight in pair order, one buffer per thread (products run on the engine thread).</summary>
    [ThreadStatic]
    private static ScratchBuffer? _pairedRows;

    public Tensor Multiply(Tensor x, Tensor? bias)
    {
        ObjectDisposedException.ThrowIf(_weights is null, this);
        return ServingMatrix.Multiply(x, bias, Inputs, Outputs, (rows, count, biasValues, output) =>
        {
            if (count >= WidenedFromRows && MklPackedMatrix.CanMultiplyPlain)
            {
                ServingMatrix.MultiplyWidened(rows, count, biasValues, output, Inputs, Outputs, _stride,
                    (destination, start, end) => Bf16Kernels.Widen(_weights, _stride, Outputs, destination, start, end));
                return;
            }
            // The kernel reads the rows in pair order, zero-padded to whole steps.
            float* paired = (_pairedRows ??= new ScratchBuffer()).For<float>((long)count * _stride);
            for (int r = 0; r < count; r++)
            {
                var row = new Span<float>(paired + (long)r * _stride, _stride);
                new ReadOnlySpan<float>(rows + (long)r * Inputs, Inputs).CopyTo(row);
                row[Inputs..].Clear();
                Bf16Kernels.ToPairOrder(paired + (long)r * _stride, _stride);
            }
            Bf16Kernels.Multiply(_weights, _stride, Outputs, paired, count, output, biasValues);
        });
    }

    public void Dispose()
    {
        if (_weights is not null)
        {
            NativeMemory.AlignedFree(_weights);
            _weights = null;
        }
    }
}
