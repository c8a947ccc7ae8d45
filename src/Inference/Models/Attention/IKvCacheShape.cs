namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// What a <see cref="PagedKvCache"/> needs to know of a model: every architecture's config says it
/// in its own words (GPT-2's n_layer and n_head; Llama's num_key_value_heads, fewer than its query
/// heads under grouped-query attention).
/// </summary>
public interface IKvCacheShape
{
    int LayerCount { get; }

    /// <summary>Key/value heads: the query head count, or fewer under grouped-query attention.</summary>
    int KvHeadCount { get; }

    int HeadSize { get; }
}
