using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// Grouped-query attention for SDPA, which in TorchSharp 0.107 takes no enable_gqa flag: every
/// key/value head is repeated for the query heads of its group, as transformers' repeat_kv does,
/// so query head h reads key/value head h / (nh / n_kv).
/// </summary>
public static class GroupedQuery
{
    /// <param name="keysOrValues">(B, n_kv, T, hs), n_kv dividing <paramref name="queryHeads"/> and smaller than it.</param>
    /// <returns>(B, nh, T, hs): a new tensor.</returns>
    public static Tensor RepeatKeyValueHeads(Tensor keysOrValues, long queryHeads)
    {
        long[] shape = keysOrValues.shape;
        long b = shape[0], kvHeads = shape[1], t = shape[2], hs = shape[3];
        using Tensor grouped = keysOrValues.unsqueeze(2)
            .expand(b, kvHeads, queryHeads / kvHeads, t, hs);                            // (B, n_kv, nh / n_kv, T, hs)
        return grouped.reshape(b, queryHeads, t, hs);                                    // (B, nh, T, hs)
    }
}
