namespace LlmServer.Inference.KvCache;

/// <summary>
/// What the KV cache manager reads and keeps of a request: its tokens, how many of them are in the
/// cache, and its prefix-cache bookkeeping. The scheduler's request is one; the cache knows
/// nothing else of scheduling.
/// </summary>
public interface IKvCacheRequest
{
    string RequestId { get; }

    /// <summary>The weights the request runs on; part of its blocks' content identity, so blocks never cross models.</summary>
    int WeightsId { get; }

    IReadOnlyList<int> TokenIds { get; }
    int NumTokens { get; }

    /// <summary>The most tokens the request can ever hold in the cache.</summary>
    int MaxTotalTokens { get; }

    /// <summary>Tokens whose keys and values are in the cache; the manager moves it past a cached prefix it hands over.</summary>
    int NumComputedTokens { get; set; }

    PrefixCacheState PrefixCache { get; }
}
