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
