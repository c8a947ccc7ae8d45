using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Quantization;

/// <summary>Builds the serving form of a projection's weight for a <see cref="WeightFormat"/>.</summary>
public static class ServingMatrix
{
    /// <summary>
    /// The weight stored (in, out), or (out, in) when <paramref name="storedAsOutByIn"/>, in the serving
    /// form of <paramref name="format"/>; null where that form cannot serve it (not a host matrix, or
    /// float32 without MKL), in which case callers keep torch's product.
    /// </summary>
    public static IServingMatrix? TryCreate(Tensor weight, bool storedAsOutByIn, WeightFormat format)
    {
        if (weight.dim() != 2 || weight.device_type != TorchSharp.DeviceType.CPU)
        {
            return null;
        }
        return format switch
        {
            WeightFormat.Int8 => Int8Matrix.Quantize(weight, storedAsOutByIn),
            WeightFormat.BFloat16 => Bf16Matrix.Convert(weight, storedAsOutByIn),
            _ => MklPackedMatrix.TryPack(weight, storedAsOutByIn),
        };
    }

    /// <summary>Why <paramref name="format"/> cannot serve on this CPU, or null when it can.</summary>
    public static string? UnsupportedReason(WeightFormat format) => format switch
    {
        WeightFormat.Int8 when !Int8Kernels.IsSupported => "int8 weights need a CPU with AVX2 and FMA",
        WeightFormat.BFloat16 when !Bf16Kernels.IsSupported => "bfloat16 weights need a CPU with AVX2 and FMA",
        _ => null,
    };

    /// <summary>What a reduced form's kernel is handed: contiguous rows (count, in), the bias (out) or null, and the output (count, out).</summary>
    internal unsafe delegate void RowsKernel(float* rows, int count, float* bias, float* output);

    /// <summary>
    /// The frame every reduced form's product shares: checks the rows are (N, <paramref name="inputs"/>) float32 on
    /// the host, and runs <paramref name="kernel"/> on their contiguous values into a new (N, <paramref name="outputs"/>) tensor.
    /// </summary>
    internal static unsafe Tensor Multiply(Tensor x, Tensor? bias, int inputs, int outputs, RowsKernel kernel)
    {
        if (x.dim() != 2 || x.shape[1] != inputs || x.dtype != ScalarType.Float32 || x.device_type != TorchSharp.DeviceType.CPU)
        {
            throw new ArgumentException($"expected (N, {inputs}) float32 rows on the CPU", nameof(x));
        }
        using Tensor rows = x.contiguous();                                              // (N, in)
        using Tensor? biasValues = bias?.contiguous();                                   // (out), float32 like the model
        int count = (int)rows.shape[0];
        Tensor output = empty([count, outputs], ScalarType.Float32, CPU);               // (N, out)
        if (count > 0)
        {
            kernel((float*)TensorMemory.DataPointer(rows), count,
                biasValues is null ? null : (float*)TensorMemory.DataPointer(biasValues), (float*)TensorMemory.DataPointer(output));
        }
        return output;
    }

    /// <summary>Writes a reduced weight's outputs [start, end) (start a multiple of four) as float32 rows of its padded length, from the destination on.</summary>
    internal unsafe delegate void WidenKernel(float* destination, int start, int end);

    /// <summary>
    /// Floats of weight widened at a time: a larger matrix (an LM head under prompt logprobs, say) is
    /// widened and multiplied a slice of outputs at a time, so the scratch buffer stays this small.
    /// </summary>
    private const long WidenedSliceFloats = 4L << 20;

    /// <summary>
    /// A reduced form's product for many rows: the weight widened to float32 (out, <paramref name="stride"/>)
    /// in a scratch buffer, then MKL's float32 GEMM. With enough rows the widening is a small share of
    /// the product, and MKL's GEMM runs nearer the core's multiply rate than the reduced forms' own
    /// kernels can without AVX-512 (docs/quantization.md, "How it works").
    /// </summary>
    internal static unsafe void MultiplyWidened(float* rows, int count, float* bias, float* output, int inputs, int outputs, int stride, WidenKernel widen)
    {
        int sliceOutputs = (int)Math.Min(outputs, Math.Max(4, WidenedSliceFloats / stride / 4 * 4));
        float* weights = (_widenedWeights ??= new ScratchBuffer()).For<float>((long)sliceOutputs * stride);
        if (bias is not null)
        {
            // MKL adds the product onto the output, so each row starts as the bias.
            for (int r = 0; r < count; r++)
            {
                new ReadOnlySpan<float>(bias, outputs).CopyTo(new Span<float>(output + (long)r * outputs, outputs));
            }
        }
        for (int first = 0; first < outputs; first += sliceOutputs)
        {
            int sliceStart = first, slice = Math.Min(sliceOutputs, outputs - first);
            KernelThreads.ForOutputRanges(slice, 4, (start, end) => widen(weights + (long)start * stride, sliceStart + start, sliceStart + end));
            MklPackedMatrix.MultiplyByTransposed(weights, slice, inputs, stride, rows, count, output + first, outputs, addToOutput: bias is not null);
        }
    }

    /// <summary>The float32 copy of the weight in flight, one buffer per thread (products run on the engine thread).</summary>
    [ThreadStatic]
    private static ScratchBuffer? _widenedWeights;

    /// <summary>(out, in) float32 contiguous host copy of a weight stored either way.</summary>
    internal static Tensor OutByIn(Tensor weight, bool storedAsOutByIn)
    {
        using Tensor detached = weight.detach();
        using Tensor asFloat = detached.to(ScalarType.Float32);
        if (storedAsOutByIn)
        {
            return asFloat.contiguous();                                                 // (out, in)
        }
        using Tensor transposed = asFloat.t();                                           // (out, in), a view
        return transposed.contiguous();
    }
}
