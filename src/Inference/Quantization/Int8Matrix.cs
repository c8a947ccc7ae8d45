using System.Runtime.InteropServices;
using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// A weight quantized to int8 at load: symmetric, one float32 scale per output channel
/// (scale = max|w| / 127, q = round(w / scale)), rows (out, in) zero-padded to whole kernel steps and
/// laid out as <see cref="Int8Kernels.Offset"/> says.
/// Products quantize each incoming row the same way and run <see cref="Int8Kernels"/>; products of
/// <see cref="WidenedFromRows"/> rows or more (long prompts) multiply the rows as they are by the
/// weight widened to float32 (<see cref="ServingMatrix.MultiplyWidened"/>).
/// </summary>
public sealed unsafe class Int8Matrix : IServingMatrix
{
    private readonly int _stride;
    private sbyte* _weights;
    private float* _scales;

    private Int8Matrix(int inputs, int outputs, int stride, sbyte* weights, float* scales)
    {
        Inputs = inputs;
        Outputs = outputs;
        _stride = stride;
        _weights = weights;
        _scales = scales;
    }

    public int Inputs { get; }

    public int Outputs { get; }

    public WeightFormat Format => WeightFormat.Int8;

    public long Bytes => (long)Outputs * _stride + Outputs * sizeof(float);

    /// <summary>Quantizes a weight stored (in, out), or (out, in) when <paramref name="storedAsOutByIn"/>.</summary>
    public static Int8Matrix Quantize(Tensor weight, bool storedAsOutByIn)
    {
        using Tensor source = ServingMatrix.OutByIn(weight, storedAsOutByIn);           // (out, in)
        int outputs = (int)source.shape[0], inputs = (int)source.shape[1];
        int stride = Int8Kernels.PaddedLength(inputs);
        var weights = (sbyte*)NativeMemory.AlignedAlloc((nuint)((long)outputs * stride), 64);
        var scales = (float*)NativeMemory.AlignedAlloc((nuint)(outputs * sizeof(float)), 64);
        float* values = (float*)TensorMemory.DataPointer(source);
        Parallel.For(0, outputs, o =>
        {
            float* row = values + (long)o * inputs;
            float max = 0f;
            for (int k = 0; k < inputs; k++)
            {
                max = MathF.Max(max, MathF.Abs(row[k]));
            }
            float scale = max / 127f;
            scales[o] = scale;
            // Divided, not multiplied by 127 / max: that product is a rounding away from w / scale and can
            // land past an exact .5, rounding a weight the other way from q = round(w / scale).
            for (int k = 0; k < stride; k++)
            {
                weights[Int8Kernels.Offset(o, k, stride, outputs)] = k < inputs && scale != 0f
                    ? (sbyte)Math.Clamp((int)MathF.Round(row[k] / scale, MidpointRounding.ToEven), -127, 127)
                    : (sbyte)0;
            }
        });
        return new Int8Matrix(inputs, outputs, stride, weights, scales);
    }

    /// <summary>The weight as the products see it, (out, in) float32: q × scale.</summary>
    public Tensor? Dequantize()
    {
        ObjectDisposedException.ThrowIf(_weights is null, this);
        Tensor result = empty([Outputs, Inputs], ScalarType.Float32, CPU);            // (out, in)
        float* values = (float*)TensorMemory.DataPointer(result);
        sbyte* weights = _weights;
        float* scales = _scales;
        int inputs = Inputs, outputs = Outputs, stride = _stride;
        Parallel.For(0, outputs, o =>
        {
            float* row = values + (long)o * inputs;
            for (int k = 0; k < inputs; k++)
            {
                row[k] = weights[Int8Kernels.Offset(o, k, stride, outputs)] * scales[o];
            }
        });
        return result;
    }

    /// <summary>
    /// Rows from which a product widens the weight to float32 and runs MKL's GEMM (weight-only int8)
    /// instead of quantizing the rows too: where the widening costs less than MKL gains over the int8 kernel.
    /// </summary>
    internal const int WidenedFromRows = 512;

    // The rows of the product in flight, quantized: values, magnitudes and scales, one set per thread
    // (products run on the engine thread), so a decode step allocates nothing.
    [ThreadStatic]
    private static ScratchBuffer? _quantizedRows;

    [ThreadStatic]
    private static ScratchBuffer? _rowMagnitudes;

    [ThreadStatic]
    private static ScratchBuffer? _rowScales;

    public Tensor Multiply(Tensor x, Tensor? bias)
    {
        ObjectDisposedException.ThrowIf(_weights is null, this);
        return ServingMatrix.Multiply(x, bias, Inputs, Outputs, (rows, count, biasValues, output) =>
        {
            if (count >= WidenedFromRows && MklPackedMatrix.CanMultiplyPlain)
            {
                ServingMatrix.MultiplyWidened(rows, count, biasValues, output, Inputs, Outputs, _stride,
                    (destination, start, end) => Int8Kernels.Widen(_weights, _scales, _stride, Outputs, destination, start, end));
                return;
            }
            sbyte* quantized = (_quantizedRows ??= new ScratchBuffer()).For<sbyte>((long)count * _stride);
            byte* magnitudes = (_rowMagnitudes ??= new ScratchBuffer()).For<byte>((long)count * _stride);
            float* rowScales = (_rowScales ??= new ScratchBuffer()).For<float>(count);
            Int8Kernels.QuantizeRows(rows, count, Inputs, _stride, quantized, magnitudes, rowScales);
            Int8Kernels.Multiply(_weights, _scales, _stride, Outputs, quantized, magnitudes, rowScales, count, output, biasValues);
        });
    }

    public void Dispose()
    {
        if (_weights is not null)
        {
            NativeMemory.AlignedFree(_weights);
            NativeMemory.AlignedFree(_scales);
            _weights = null;
            _scales = null;
        }
    }
}
