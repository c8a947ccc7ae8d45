using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// Attention within each sequence of a (B, T) batch, with no cache: training and evaluation, where
/// every sequence is whole and starts at position 0, and autograd must see each operation.
/// </summary>
public sealed class CausalAttention : IAttentionBackend
{
    private CausalAttention()
    {
    }

    public static CausalAttention Instance { get; } = new();

    /// <param name="queries">(B, T, nh, hs)</param>
    /// <param name="keys">(B, T, n_kv, hs)</param>
    /// <param name="values">(B, T, n_kv, hs)</param>
    /// <returns>(B, T, nh * hs)</returns>
    public Tensor Attend(int layer, Tensor queries, Tensor keys, Tensor values)
    {
        long[] shape = queries.shape;
        long b = shape[0], t = shape[1], width = shape[2] * shape[3];
        using Tensor q = queries.transpose(1, 2);                                        // (B, nh, T, hs)
        using Tensor k = keys.transpose(1, 2);                                           // (B, n_kv, T, hs)
        using Tensor v = values.transpose(1, 2);                                         // (B, n_kv, T, hs)
        // Query and key lengths are equal here, so SDPA's top-left aligned causal mask is right.
        using Tensor attended = shape[2] == keys.shape[2]
            ? functional.scaled_dot_product_attention(q, k, v, is_casual: true)          // (B, nh, T, hs)
            : AttendGrouped(q, k, v, shape[2]);                                          // (B, nh, T, hs)
        return attended.transpose(1, 2).reshape(b, t, width);                            // (B, T, nh * hs)
    }

    /// <summary>Grouped-query attention: each key/value head repeated for its group of query heads.</summary>
    private static Tensor AttendGrouped(Tensor q, Tensor k, Tensor v, long queryHeads)
    {
        using Tensor kRepeated = GroupedQuery.RepeatKeyValueHeads(k, queryHeads);       // (B, nh, T, hs)
        using Tensor vRepeated = GroupedQuery.RepeatKeyValueHeads(v, queryHeads);       // (B, nh, T, hs)
        return functional.scaled_dot_product_attention(q, kRepeated, vRepeated, is_casual: true); // (B, nh, T, hs)
    }
}
