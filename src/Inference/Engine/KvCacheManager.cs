namespace LlmServer.Inference.Engine;

/// <summary>
/// Keeps each request's block table: which blocks hold its tokens, in order. Token i of a request
/// lives in block table[i / BlockSize] at offset i % BlockSize.
/// </summary>
public sealed class KvCacheManager
{
    private readonly BlockPool _pool;
    private readonly Dictionary<string, List<int>> _blockTables = new(StringComparer.Ordinal);

    public KvCacheManager(BlockPool pool, int blockSize)
    {
        if (blockSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockSize), blockSize, "block size must be positive");
        }
        _pool = pool;
        BlockSize = blockSize;
    }

    public int BlockSize { get; }
    public BlockPool Pool => _pool;

    /// <summary>Tokens the whole cache can hold.</summary>
    public long Capacity => (long)_pool.BlockCount * BlockSize;

    public IReadOnlyList<int> BlockTable(string requestId) =>
        _blockTables.TryGetValue(requestId, out List<int>? table) ? table : [];

    /// <summary>Makes room for <paramref name="newTokenCount"/> more tokens after the request's computed ones; false if the pool is short.</summary>
    public bool TryAllocateSlots(Request request, int newTokenCount)
    {
        if (!_blockTables.TryGetValue(request.RequestId, out List<int>? table))
        {
            table = [];
            _blockTables[request.RequestId] = table;
        }
        int blocksNeeded = BlocksFor(request.NumComputedTokens + newTokenCount) - table.Count;
        if (blocksNeeded <= 0)
        {
            return true;
        }
        bool allocated = _pool.TryAllocate(blocksNeeded, table);
        if (!allocated && table.Count == 0)
        {
            _blockTables.Remove(request.RequestId);
        }
        return allocated;
    }

    /// <summary>Gives all of the request's blocks back; a no-op for a request that holds none.</summary>
    public void Free(Request request)
    {
        if (_blockTables.Remove(request.RequestId, out List<int>? table))
        {
            _pool.Release(table);
        }
    }

    public int BlocksFor(int tokenCount) => (tokenCount + BlockSize - 1) / BlockSize;
}
