using LlmServer.Inference.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Engine;

/// <summary>
/// What serve's precision flags (<c>--dtype</c>, <c>--quantization</c>, <c>--kv-cache-dtype</c>) mean for the engine
/// on a device; every command that takes them resolves them here, so they mean the same everywhere.
/// </summary>
/// <param name="Dtype">The model's parameters and arithmetic.</param>
/// <param name="Weights">The form the projections are served in.</param>
/// <param name="KvCacheDtype">The cache's dtype, or null for the model's.</param>
public readonly record struct EnginePrecision(ScalarType Dtype, WeightFormat Weights, ScalarType? KvCacheDtype)
{
    /// <param name="device">cpu, cuda or cuda:N.</param>
    /// <param name="dtype">auto (bfloat16 on CUDA, float32 on the CPU), float32, bfloat16 or float16; values are checked by the caller.</param>
    /// <param name="quantization">none or int8.</param>
    /// <param name="kvCacheDtype">auto, float32 or bfloat16.</param>
    public static EnginePrecision Resolve(string device, string? dtype, string? quantization, string? kvCacheDtype)
    {
        bool cuda = device.StartsWith("cuda", StringComparison.Ordinal);
        ScalarType requested = dtype switch
        {
            "float16" => ScalarType.Float16,
            "bfloat16" => ScalarType.BFloat16,
            "float32" => ScalarType.Float32,
            _ => cuda ? ScalarType.BFloat16 : ScalarType.Float32,
        };
        // The CPU has no fast bfloat16 arithmetic without AVX512_BF16: there bfloat16 is how the weights
        // are kept, and the model computes in float32 (docs/quantization.md).
        WeightFormat weights = quantization == "int8" ? WeightFormat.Int8
            : !cuda && requested == ScalarType.BFloat16 ? WeightFormat.BFloat16
            : WeightFormat.Float32;
        ScalarType? cache = kvCacheDtype switch
        {
            "float32" => ScalarType.Float32,
            "bfloat16" => ScalarType.BFloat16,
            _ => null,
        };
        return new EnginePrecision(cuda ? requested : ScalarType.Float32, weights, cache);
    }
}
