namespace LlmServer.Inference.KvCache;

/// <summary>
/// One request's prefix-cache bookkeeping. It lives with the request rather than in the manager so
/// that a preempted request keeps its block hashes (each is computed once) while its blocks are gone.
/// </summary>
public sealed class PrefixCacheState
{
    /// <summary>Content hashes of the request's full blocks, computed once each.</summary>
    public List<BlockHash> BlockHashes { get; } = [];

    /// <summary>Leading blocks of this request already published to the prefix cache.</summary>
    public int PublishedBlockCount { get; set; }

    /// <summary>The block pool's content epoch <see cref="BlockHashes"/> were computed in.</summary>
    public int BlockHashesEpoch { get; set; }

    /// <summary>The content epoch the request's cached keys and values were computed in.</summary>
    public int ComputedInEpoch { get; set; }
}
