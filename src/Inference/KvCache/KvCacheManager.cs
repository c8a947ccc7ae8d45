namespace LlmServer.Inference.KvCache;

/// <summary>
/// Keeps each request's block table (token i lives in block table[i / BlockSize] at offset
/// i % BlockSize) and, with prefix caching on, finds cached blocks for a new request's prompt and
/// publishes the request's own blocks once they are full.
/// </summary>
public sealed class KvCacheManager
{
    private readonly BlockPool _pool;
    private readonly Dictionary<string, List<int>> _blockTables = new(StringComparer.Ordinal);

    public KvCacheManager(BlockPool pool, int blockSize, bool enablePrefixCaching = true)
    {
        if (blockSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "block size must be positive");
        }
        _pool = pool;
        BlockSize = blockSize;
        PrefixCachingEnabled = enablePrefixCaching;
    }

    public int BlockSize { get; }
    public BlockPool Pool => _pool;
    public bool PrefixCachingEnabled { get; }

    /// <summary>Prompt tokens looked up in the prefix cache, and how many of them were found (vLLM's counters).</summary>
    public long PrefixCacheQueries { get; private set; }
    public long PrefixCacheHits { get; private set; }

    /// <summary>Tokens the whole cache can hold.</summary>
    public long Capacity => (long)_pool.BlockCount * BlockSize;

    public IReadOnlyList<int> BlockTable(string requestId) =>
        _blockTables.TryGetValue(requestId, out List<int>? table) ? table : [];

    /// <summary>
    /// The longest run of the request's leading full blocks already in the cache. At least one
    /// token is always left to compute, because the step that computes it yields the logits.
    /// </summary>
    public IReadOnlyList<int> FindCachedPrefix(IKvCacheRequest request)
    {
        if (!PrefixCachingEnabled)
        {
            return [];
        }
        int cacheableBlocks = (request.NumTokens - 1) / BlockSize;
        var hits = new List<int>();
        foreach (BlockHash content in HashesOfFullBlocks(request, cacheableBlocks))
        {
            if (!_pool.TryFindCached(content, out int block))
            {
                break;
            }
            hits.Add(block);
        }
        return hits;
    }

    /// <summary>
    /// Makes room for <paramref name="newTokenCount"/> more tokens after the request's computed ones,
    /// first taking <paramref name="cachedPrefix"/> (from <see cref="FindCachedPrefix"/>) for a
    /// request that holds no blocks yet. False, with nothing changed, if the pool is short.
    /// </summary>
    public bool TryAllocateSlots(IKvCacheRequest request, int newTokenCount, IReadOnlyList<int>? cachedPrefix = null)
    {
        cachedPrefix ??= [];
        _blockTables.TryGetValue(request.RequestId, out List<int>? table);
        if (cachedPrefix.Count > 0 && table is { Count: > 0 })
        {
            throw new InvalidOperationException($"request {request.RequestId} already holds blocks; a cached prefix is for admission only");
        }
        int held = table?.Count ?? cachedPrefix.Count;
        int computed = cachedPrefix.Count > 0 ? cachedPrefix.Count * BlockSize : request.NumComputedTokens;
        int blocksNeeded = BlocksFor(computed + newTokenCount) - held;
        // Cached blocks nobody holds sit in the free list; taking them shrinks what is left for new ones.
        int freeAfterTouch = _pool.FreeBlockCount - cachedPrefix.Count(block => _pool.ReferenceCount(block) == 0);
        if (blocksNeeded > freeAfterTouch)
        {
            return false;
        }
        if (table is null)
        {
            table = new List<int>(BlocksFor(request.MaxTotalTokens));
            _blockTables[request.RequestId] = table;
            request.PrefixCache.ComputedInEpoch = _pool.ContentEpoch;
        }
        if (cachedPrefix.Count > 0)
        {
            _pool.Touch(cachedPrefix);
            table.AddRange(cachedPrefix);
            request.NumComputedTokens = cachedPrefix.Count * BlockSize;
        }
        if (blocksNeeded > 0 && !_pool.TryAllocate(blocksNeeded, table))
        {
            throw new InvalidOperationException("the block pool shrank between the check and the allocation");
        }
        return true;
    }

    /// <summary>Counts a prompt lookup for the hit-rate metrics (once per admission).</summary>
    public void RecordLookup(IKvCacheRequest request, int cachedTokens)
    {
        if (PrefixCachingEnabled)
        {
            PrefixCacheQueries += request.NumTokens;
            PrefixCacheHits += cachedTokens;
        }
    }

    /// <summary>Publishes the request's blocks that its computed tokens have filled since the last call.</summary>
    public void CacheFullBlocks(IKvCacheRequest request)
    {
        // Blocks computed under weights that have since been replaced must never be found again.
        if (!PrefixCachingEnabled || request.PrefixCache.ComputedInEpoch != _pool.ContentEpoch
            || !_blockTables.TryGetValue(request.RequestId, out List<int>? table))
        {
            return;
        }
        int fullBlocks = Math.Min(request.NumComputedTokens / BlockSize, table.Count);
        if (fullBlocks <= request.PrefixCache.PublishedBlockCount)
        {
            return;
        }
        List<BlockHash> hashes = HashesOfFullBlocks(request, fullBlocks);
        for (int block = request.PrefixCache.PublishedBlockCount; block < fullBlocks; block++)
        {
            _pool.MarkCached(table[block], hashes[block]);
        }
        request.PrefixCache.PublishedBlockCount = fullBlocks;
    }

    /// <summary>Gives all of the request's blocks back, last first so its prefix stays cached longest.</summary>
    public void Free(IKvCacheRequest request)
    {
        if (_blockTables.Remove(request.RequestId, out List<int>? table))
        {
            table.Reverse();
            _pool.Release(table);
        }
        request.PrefixCache.PublishedBlockCount = 0;
    }

    public int BlocksFor(int tokenCount) => (tokenCount + BlockSize - 1) / BlockSize;

    /// <summary>The chained hashes of the request's first <paramref name="count"/> blocks, computed once each.</summary>
    private List<BlockHash> HashesOfFullBlocks(IKvCacheRequest request, int count)
    {
        List<BlockHash> hashes = request.PrefixCache.BlockHashes;
        if (request.PrefixCache.BlockHashesEpoch != _pool.ContentEpoch)
        {
            hashes.Clear();
            request.PrefixCache.BlockHashesEpoch = _pool.ContentEpoch;
        }
        // The first block chains from the epoch and the weights, so keys and values computed by
        // other weights (another model, an adapter, a replaced checkpoint) never match.
        var root = new BlockHash(((UInt128)(uint)_pool.ContentEpoch << 32) | (uint)request.WeightsId);
        while (hashes.Count < count)
        {
            int start = hashes.Count * BlockSize;
            int[] tokens = new int[BlockSize];
            for (int i = 0; i < BlockSize; i++)
            {
                tokens[i] = request.TokenIds[start + i];
            }
            hashes.Add(BlockHash.Of(hashes.Count == 0 ? root : hashes[^1], tokens));
        }
        return hashes.Count == count ? hashes : hashes.GetRange(0, count);
    }
}
