using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// Attention between the projections: a model computes its queries, keys and values (and rotates
/// them first, where it uses RoPE) and hands them over; what they attend over is the backend's
/// business. Serving passes a <see cref="PagedAttention"/> (many sequences flattened into one
/// batch, keys and values through the paged cache); training passes <see cref="CausalAttention"/>
/// (whole sequences, no cache, under autograd). So a model has one block forward for both.
/// </summary>
public interface IAttentionBackend
{
    /// <param name="layer">The calling layer: whose part of a cache the keys and values are.</param>
    /// <param name="queries">(..., nh, hs): (N, nh, hs) in serving, (B, T, nh, hs) in training.</param>
    /// <param name="keys">(..., n_kv, hs)</param>
    /// <param name="values">(..., n_kv, hs)</param>
    /// <returns>(..., nh * hs): every query's heads side by side, ready for the output projection.</returns>
    Tensor Attend(int layer, Tensor queries, Tensor keys, Tensor values);
}
