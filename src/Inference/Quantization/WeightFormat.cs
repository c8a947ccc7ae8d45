namespace LlmServer.Inference.Quantization;

/// <summary>
/// How the server keeps a model's projection weights (every linear layer and the LM head) for
/// serving on the CPU. Activations, norms, attention and the KV cache are unaffected: the products
/// read the stored weights and write float32.
/// </summary>
public enum WeightFormat
{
    /// <summary>The checkpoint's values at full precision, multiplied by MKL's packed GEMM.</summary>
    Float32,

    /// <summary>bfloat16: half the bytes, float32's range, about 3 significant digits.</summary>
    BFloat16,

    /// <summary>int8, symmetric, one scale per output channel, quantized at load: a quarter of the bytes.</summary>
    Int8,
}
