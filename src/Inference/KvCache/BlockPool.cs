namespace LlmServer.Inference.KvCache;

/// <summary>
/// Hands out KV-cache block ids and remembers which full blocks hold which content. Pure
/// bookkeeping: the tensors live in the model runner's cache.
/// A block is shared by every request that holds a reference to it. When the last one lets go it
/// joins the free list but keeps its content: until the block is handed out again, a request whose
/// prompt has the same prefix can take it back (prefix caching). The free list is LRU: the blocks
/// freed longest ago are reused first.
/// </summary>
public sealed class BlockPool
{
    private readonly int[] _referenceCounts;
    private readonly BlockHash?[] _contentOf;
    private readonly LinkedList<int> _free = new();
    private readonly LinkedListNode<int>?[] _freeNodes;
    private readonly Dictionary<BlockHash, int> _blockWithContent = [];

    public BlockPool(int blockCount)
    {
        if (blockCount <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(blockCount), blockCount, "the KV cache needs at least one block");
        }
        BlockCount = blockCount;
        _referenceCounts = new int[blockCount];
        _contentOf = new BlockHash?[blockCount];
        _freeNodes = new LinkedListNode<int>?[blockCount];
        for (int block = 0; block < blockCount; block++)
        {
            _freeNodes[block] = _free.AddLast(block);
        }
    }

    public int BlockCount { get; }

    /// <summary>Blocks that can be handed out, including cached ones nobody holds.</summary>
    public int FreeBlockCount => _free.Count;

    public int UsedBlockCount => BlockCount - _free.Count;

    /// <summary>Full blocks whose content is known and can be reused.</summary>
    public int CachedBlockCount => _blockWithContent.Count;

    /// <summary>Fraction of blocks held by running requests, for the KV-usage gauge.</summary>
    public double Usage => (double)UsedBlockCount / BlockCount;

    public int ReferenceCount(int block) => _referenceCounts[block];

    public bool TryAllocate(int count, List<int> into)
    {
        if (count > _free.Count)
        {
            return false;
        }
        for (int i = 0; i < count; i++)
        {
            int block = _free.First!.Value;
            _free.RemoveFirst();
            _freeNodes[block] = null;
            Forget(block);
            _referenceCounts[block] = 1;
            into.Add(block);
        }
        return true;
    }

    /// <summary>The block that holds <paramref name="content"/>, if any still does.</summary>
    public bool TryFindCached(BlockHash content, out int block) => _blockWithContent.TryGetValue(content, out block);

    /// <summary>Takes a reference to cached blocks; one nobody held leaves the free list.</summary>
    public void Touch(IEnumerable<int> blocks)
    {
        foreach (int block in blocks)
        {
            if (_referenceCounts[block]++ == 0)
            {
                _free.Remove(_freeNodes[block]!);
                _freeNodes[block] = null;
            }
        }
    }

    /// <summary>Records that a full block holds <paramref name="content"/>, unless another block already does.</summary>
    public void MarkCached(int block, BlockHash content)
    {
        if (_contentOf[block] is null && _blockWithContent.TryAdd(content, block))
        {
            _contentOf[block] = content;
        }
    }

    /// <summary>Releases blocks in the given order; pass a request's blocks last-first so its prefix is evicted last.</summary>
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
                _freeNodes[block] = _free.AddLast(block);
            }
        }
    }

    /// <summary>
    /// Which weights the cached content belongs to. Hashes are salted with it, and requests that
    /// started under an older epoch never publish their blocks.
    /// </summary>
    public int ContentEpoch { get; private set; }

    /// <summary>Forgets every block's content, for when the weights that produced it are replaced.</summary>
    public void ForgetAllContent()
    {
        _blockWithContent.Clear();
        Array.Fill(_contentOf, null);
        ContentEpoch++;
    }

    private void Forget(int block)
    {
        if (_contentOf[block] is BlockHash content)
        {
            _blockWithContent.Remove(content);
            _contentOf[block] = null;
        }
    }
}
