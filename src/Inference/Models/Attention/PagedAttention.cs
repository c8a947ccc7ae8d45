using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// Attention for one serving step over the paged KV cache, shared by every architecture: the
/// step's keys and values go into the cache at their slots, then each group of the
/// <see cref="AttentionMetadata"/> attends the cheapest way its layout allows.
/// </summary>
/// <remarks>
/// A model with RoPE rotates queries and keys before the call, so the cache holds rotated keys and
/// a cached key is never rotated again. Made once per forward pass; it owns no tensors.
/// </remarks>
public sealed class PagedAttention(AttentionMetadata metadata, PagedKvCache cache) : IAttentionBackend
{
    /// <param name="queries">(N, nh, hs): the step's N tokens, ordered as the metadata's groups say.</param>
    /// <param name="keys">(N, n_kv, hs)</param>
    /// <param name="values">(N, n_kv, hs)</param>
    /// <returns>(N, nh * hs)</returns>
    public Tensor Attend(int layer, Tensor queries, Tensor keys, Tensor values)
    {
        long[] queryShape = queries.shape;
        var heads = new HeadLayout(QueryHeads: queryShape[1], KeyValueHeads: keys.shape[1], HeadSize: queryShape[2]);
        // The new keys and values join the cache first, so every group reads its whole context,
        // the tokens of this step included, from one place.
        // A cache kept narrower than the model (bfloat16 under float32) stores the rounded values.
        cache.Write(layer, metadata.SlotMapping, keys, values);

        var groupOutputs = new List<Tensor>(metadata.Groups.Count);
        foreach (AttentionGroup group in metadata.Groups)
        {
            groupOutputs.Add(group switch
            {
                { StartsAtFirstToken: true } => AttendFromFirstToken(group, queries, keys, values, heads),
                { DecodeContexts: not null } => AttendDecodesInPlace(group, queries, layer),
                _ => AttendOverGatheredBlocks(group, queries, layer, heads),
            });                                                                          // (tokens of the group, nh * hs)
        }
        if (groupOutputs.Count == 1)
        {
            return groupOutputs[0];                                                      // (N, nh * hs)
        }
        Tensor output = cat(groupOutputs, 0);                                            // (N, nh * hs)
        groupOutputs.ForEach(t => t.Dispose());
        return output;
    }

    /// <summary>
    /// A prompt computed from its first token: its whole context is this step's tokens, so it
    /// attends over the keys and values just computed: on the host through <see cref="CausalPromptAttention"/>,
    /// elsewhere through SDPA. Query and key lengths are equal, so SDPA's top-left causal mask is right,
    /// and without an explicit mask it can take its memory-efficient kernel.
    /// </summary>
    private static Tensor AttendFromFirstToken(AttentionGroup group, Tensor queries, Tensor keys, Tensor values, HeadLayout heads)
    {
        long t = group.QueryLength;
        if (group.SequenceCount == 1 && CausalPromptAttention.Supports(queries, keys, values))
        {
            using Tensor promptQueries = queries.narrow(0, group.FirstToken, group.TokenCount);  // (T, nh, hs)
            using Tensor promptKeys = keys.narrow(0, group.FirstToken, group.TokenCount);        // (T, n_kv, hs)
            using Tensor promptValues = values.narrow(0, group.FirstToken, group.TokenCount);    // (T, n_kv, hs)
            return CausalPromptAttention.Run(promptQueries, promptKeys, promptValues);           // (T, nh * hs)
        }
        using Tensor q = queries.narrow(0, group.FirstToken, group.TokenCount)
            .view(1, t, heads.QueryHeads, heads.HeadSize).transpose(1, 2);               // (1, nh, T, hs)
        using Tensor k = keys.narrow(0, group.FirstToken, group.TokenCount)
            .view(1, t, heads.KeyValueHeads, heads.HeadSize).transpose(1, 2);            // (1, n_kv, T, hs)
        using Tensor v = values.narrow(0, group.FirstToken, group.TokenCount)
            .view(1, t, heads.KeyValueHeads, heads.HeadSize).transpose(1, 2);            // (1, n_kv, T, hs)
        using Tensor attended = heads.Grouped
            ? AttendGrouped(q, k, v, heads, mask: null)                                  // (1, nh, T, hs)
            : functional.scaled_dot_product_attention(q, k, v, is_casual: true);         // (1, nh, T, hs)
        return attended.transpose(1, 2).reshape(t, heads.Width);                         // (T, nh * hs)
    }

    /// <summary>One query per sequence, read where its keys and values lie (<see cref="PagedDecodeAttention"/>).</summary>
    private Tensor AttendDecodesInPlace(AttentionGroup group, Tensor queries, int layer)
    {
        using Tensor decodeQueries = queries.narrow(0, group.FirstToken, group.TokenCount); // (B, nh, hs)
        return PagedDecodeAttention.Run(decodeQueries, cache, layer, group);             // (B, nh * hs)
    }

    /// <summary>
    /// Anything else (a prompt chunk after a cached start, or decodes whose cache cannot be read in
    /// place): whole blocks are gathered, one row of block_size * n_kv * hs floats per block, and the
    /// group's mask hides each query's future and the padding after each context.
    /// </summary>
    private Tensor AttendOverGatheredBlocks(AttentionGroup group, Tensor queries, int layer, HeadLayout heads)
    {
        long b = group.SequenceCount, tq = group.QueryLength, tk = group.KeyLength;
        using Tensor q = queries.narrow(0, group.FirstToken, group.TokenCount)
            .view(b, tq, heads.QueryHeads, heads.HeadSize).transpose(1, 2);              // (B, nh, Tq, hs)
        using Tensor k = cache.KeyBlocks(layer).index_select(0, group.KeyBlocks!).to(queries.dtype)
            .view(b, tk, heads.KeyValueHeads, heads.HeadSize).transpose(1, 2);           // (B, n_kv, Tk, hs)
        using Tensor v = cache.ValueBlocks(layer).index_select(0, group.KeyBlocks!).to(queries.dtype)
            .view(b, tk, heads.KeyValueHeads, heads.HeadSize).transpose(1, 2);           // (B, n_kv, Tk, hs)
        using Tensor attended = heads.Grouped
            ? AttendGrouped(q, k, v, heads, group.Mask!)                                 // (B, nh, Tq, hs)
            : functional.scaled_dot_product_attention(q, k, v, group.Mask!);             // (B, nh, Tq, hs)
        return attended.transpose(1, 2).reshape(b * tq, heads.Width);                    // (B*Tq, nh * hs)
    }

    /// <summary>
    /// Grouped-query attention through SDPA, which takes no GQA flag here: each key/value head is
    /// repeated for its group of query heads (a copy of this group's keys and values, never of the cache).
    /// </summary>
    /// <param name="mask">(B, 1, Tq, Tk), or null for the causal mask of equal query and key lengths.</param>
    private static Tensor AttendGrouped(Tensor q, Tensor k, Tensor v, HeadLayout heads, Tensor? mask)
    {
        using Tensor kRepeated = GroupedQuery.RepeatKeyValueHeads(k, heads.QueryHeads);  // (B, nh, Tk, hs)
        using Tensor vRepeated = GroupedQuery.RepeatKeyValueHeads(v, heads.QueryHeads);  // (B, nh, Tk, hs)
        return mask is null
            ? functional.scaled_dot_product_attention(q, kRepeated, vRepeated, is_casual: true) // (B, nh, Tq, hs)
            : functional.scaled_dot_product_attention(q, kRepeated, vRepeated, mask);    // (B, nh, Tq, hs)
    }

    private readonly record struct HeadLayout(long QueryHeads, long KeyValueHeads, long HeadSize)
    {
        public long Width => QueryHeads * HeadSize;

        /// <summary>Grouped-query attention: fewer key/value heads than query heads.</summary>
        public bool Grouped => KeyValueHeads != QueryHeads;
    }
}
