using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// The LM head of a checkpoint that ties it to the token embedding (no lm_head.weight): logits are
/// the hidden states times the embedding's transpose. Serving multiplies by a copy of the embedding
/// packed once for MKL; training keeps the plain product, so autograd reaches the embedding.
/// </summary>
public static class TiedOutputHead
{
    /// <param name="hidden">(..., C)</param>
    /// <param name="embedding">(V, C): the token embedding's weight.</param>
    /// <param name="packed">The embedding packed by <see cref="MklPackedMatrix.TryPack"/> with storedAsOutByIn, or null.</param>
    /// <returns>(..., V)</returns>
    public static Tensor Logits(Tensor hidden, Tensor embedding, MklPackedMatrix? packed)
    {
        if (packed is not null && hidden.dim() == 2 && is_inference_mode_enabled())
        {
            return packed.Multiply(hidden, bias: null);                                  // (N, V)
        }
        return hidden.matmul(embedding.t());                                             // (..., V)
    }
}
