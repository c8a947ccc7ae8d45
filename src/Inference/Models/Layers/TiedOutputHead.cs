using LlmServer.Inference.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// The LM head of a checkpoint that ties it to the token embedding (no lm_head.weight): logits are
/// the hidden states times the embedding's transpose. Serving multiplies by a copy of the embedding in
/// its serving form (packed for MKL, bfloat16 or int8), while token lookups keep reading the embedding
/// itself; training keeps the plain product, so autograd reaches the embedding.
/// </summary>
public static class TiedOutputHead
{
    /// <param name="hidden">(..., C)</param>
    /// <param name="embedding">(V, C): the token embedding's weight.</param>
    /// <param name="serving">The embedding's serving form (<see cref="ServingMatrix.TryCreate"/> with storedAsOutByIn), or null.</param>
    /// <returns>(..., V)</returns>
    public static Tensor Logits(Tensor hidden, Tensor embedding, IServingMatrix? serving)
    {
        if (serving is not null && hidden.dim() == 2 && is_inference_mode_enabled())
        {
            return serving.Multiply(hidden, bias: null);                                  // (N, V)
        }
        // Training a LoRA adapter on a base served in bfloat16 or int8 multiplies by the head serving uses.
        if (serving?.Dequantize() is { } served)
        {
            using (served)
            {
                return hidden.matmul(served.t());                                        // (..., V)
            }
        }
        return hidden.matmul(embedding.t());                                             // (..., V)
    }
}
