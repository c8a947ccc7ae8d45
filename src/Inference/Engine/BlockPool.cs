namespace LlmServer.Inference.Engine;

/// <summary>
/// Hands out KV-cache block ids. Pure bookkeeping: the tensors live in the model runner's cache.
/// A block is shared by every request that holds a reference to it; it returns to the free list
/// when the last one lets go.
/// </summary>
public sealed class BlockPool
{
    private readonly int[] _referenceCounts;
    private readonly Queue<int> _free;

    public BlockPool(int blockCount)
    {
        if (blockCount <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockCount), blockCount, "the KV cache needs at least one block");
        }
        BlockCount = blockCount;
        _referenceCounts = new int[blockCount];
        _free = new Queue<int>(Enumerable.Range(0, blockCount));
    }

    public int BlockCount { get; }
    public int FreeBlockCount => _free.Count;
    public int UsedBlockCount => BlockCount - _free.Count;

    /// <summary>Fraction of blocks in use, for the KV-usage gauge.</summary>
    public double Usage => (double)UsedBlockCount / BlockCount;

    public bool TryAllocate(int count, List<int> into)
    {
        if (count > _free.Count)
        {
            return false;
        }
        for (int i = 0; i < count; i++)
        {
            int block = _free.Dequeue();
            _referenceCounts[block] = 1;
            into.Add(block);
        }
        return true;
    }

    public void Release(IEnumerable<int> blocks)
    {
        foreach (int block in blocks)
        {
            if (_referenceCounts[block] <= 0)
            {
                throw new InvalidOperationException($"block {block} released more often than it was taken");
            }
            if (--_referenceCounts[block] == 0)
            {
                _free.Enqueue(block);
            }
        }
    }
}
