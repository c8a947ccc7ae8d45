namespace LlmServer.Inference.Tokenization;

/// <summary>
/// Byte-level BPE merges over one pre-tokenized word, in O(n log n) for a word of n bytes.
/// </summary>
/// <remarks>
/// The word is a linked list of symbols (one per byte at first) and a min-heap of candidate merges
/// keyed by (merge rank, position), as Hugging Face tokenizers' <c>Word::merge_all</c> and
/// Microsoft.ML.Tokenizers' <c>Word.MergeAll</c> do: pop the lowest rank (leftmost on a tie), skip
/// it if the pair at that position has changed since it was pushed, merge, push the two pairs the
/// merge created. That is the order OpenAI's encoder merges in, so the ids are the same.
/// Microsoft.ML.Tokenizers 2.0.1 does this too, but then drops the merged-away symbols with one
/// <c>Vec.Remove</c> each, an element-by-element shift of the rest of the word: quadratic in the
/// word's length, and a long enough word holds a core for hours. Here
/// nothing is removed; the survivors are read by following the links.
/// </remarks>
internal sealed class ByteLevelBpe
{
    private const int NoSymbol = -1;

    // How many heap pops between two looks at the cancellation token inside one long word.
    private const int CancellationCheckInterval = 1 << 16;

    private readonly int[] _idByByte;
    private readonly Dictionary<long, long> _merges;

    /// <param name="idByByte">For each byte, the id of the token that is exactly that byte; -1 where the
    /// vocabulary has none (such bytes are dropped, as Microsoft.ML.Tokenizers drops them).</param>
    /// <param name="merges">(left id, right id) to (rank, merged id), see <see cref="PairKey"/> and <see cref="MergeValue"/>.</param>
    public ByteLevelBpe(int[] idByByte, Dictionary<long, long> merges)
    {
        _idByByte = idByByte;
        _merges = merges;
    }

    public static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    /// <summary>A merge table keyed by <see cref="PairKey"/>.</summary>
    public static Dictionary<long, long> CreateMergeTable(int capacity) => new(capacity, PairKeyComparer.Instance);

    public static long MergeValue(int rank, int mergedId) => ((long)rank << 32) | (uint)mergedId;

    /// <summary>Appends the ids of one word's bytes, merged, to <paramref name="ids"/>.</summary>
    public void EncodeWord(ReadOnlySpan<byte> word, List<int> ids, Workspace workspace, CancellationToken cancellationToken)
    {
        workspace.EnsureCapacity(word.Length);
        int[] symbols = workspace.Symbols;
        int[] next = workspace.Next;
        int[] previous = workspace.Previous;

        int count = 0;
        foreach (byte value in word)
        {
            int id = _idByByte[value];
            if (id >= 0)
            {
                symbols[count++] = id;
            }
        }

        if (count <= 1)
        {
            if (count == 1)
            {
                ids.Add(symbols[0]);
            }

            return;
        }

        MergeHeap heap = workspace.Heap;
        heap.Clear();
        for (int i = 0; i < count; i++)
        {
            previous[i] = i - 1;
            next[i] = i + 1 < count ? i + 1 : NoSymbol;
            if (i + 1 < count && _merges.TryGetValue(PairKey(symbols[i], symbols[i + 1]), out long merge))
            {
                heap.Push(Candidate(merge, i));
            }
        }

        int pops = 0;
        while (heap.Count > 0)
        {
            if (++pops == CancellationCheckInterval)
            {
                pops = 0;
                cancellationToken.ThrowIfCancellationRequested();
            }

            long candidate = heap.Pop();
            int position = (int)(uint)candidate;
            int rank = (int)(candidate >> 32);
            int right = next[position];
            // Merged away (its left neighbour absorbed it), or last in the word.
            if (symbols[position] == NoSymbol || right == NoSymbol)
            {
                continue;
            }

            // The pair here changed since this candidate was pushed: a stale entry.
            if (!_merges.TryGetValue(PairKey(symbols[position], symbols[right]), out long merge) || (int)(merge >> 32) != rank)
            {
                continue;
            }

            symbols[position] = (int)(uint)merge;
            symbols[right] = NoSymbol;
            int afterRight = next[right];
            next[position] = afterRight;
            if (afterRight != NoSymbol)
            {
                previous[afterRight] = position;
                if (_merges.TryGetValue(PairKey(symbols[position], symbols[afterRight]), out long withNext))
                {
                    heap.Push(Candidate(withNext, position));
                }
            }

            int before = previous[position];
            if (before != NoSymbol && _merges.TryGetValue(PairKey(symbols[before], symbols[position]), out long withPrevious))
            {
                heap.Push(Candidate(withPrevious, before));
            }
        }

        for (int i = 0; i != NoSymbol; i = next[i])
        {
            ids.Add(symbols[i]);
        }
    }

    // Ordered by rank, then by position: the leftmost of equal-rank pairs merges first.
    private static long Candidate(long merge, int position) => (merge & ~0xFFFFFFFFL) | (uint)position;

    /// <summary>
    /// long's own hash is (upper ^ lower) 32 bits, so every pair (x, x) hashes to 0 and pairs of the
    /// low ids that byte-level merges mostly involve pile up in a few buckets: lookups walked chains
    /// of hundreds. A multiplicative mix spreads them.
    /// </summary>
    private sealed class PairKeyComparer : IEqualityComparer<long>
    {
        public static readonly PairKeyComparer Instance = new();

        public bool Equals(long x, long y) => x == y;

        public int GetHashCode(long key) => (int)((ulong)key * 0x9E3779B97F4A7C15UL >> 32);
    }

    /// <summary>Scratch space for one encode call, grown to the longest word seen; not thread-safe.</summary>
    public sealed class Workspace
    {
        public int[] Symbols { get; private set; } = new int[64];
        public int[] Next { get; private set; } = new int[64];
        public int[] Previous { get; private set; } = new int[64];
        public MergeHeap Heap { get; } = new();

        public void EnsureCapacity(int length)
        {
            if (Symbols.Length >= length)
            {
                return;
            }

            // Plain arrays, not ArrayPool.Shared: a huge word's arrays are garbage after this call
            // instead of being kept by the pool for the life of the process.
            int capacity = (int)Math.Min(Array.MaxLength, Math.Max(length, 2L * Symbols.Length));
            Symbols = new int[capacity];
            Next = new int[capacity];
            Previous = new int[capacity];
        }
    }

    /// <summary>A binary min-heap of packed (rank, position) candidates.</summary>
    public sealed class MergeHeap
    {
        private long[] _items = new long[64];

        public int Count { get; private set; }

        public void Clear() => Count = 0;

        public void Push(long item)
        {
            if (Count == _items.Length)
            {
                Array.Resize(ref _items, (int)Math.Min(Array.MaxLength, 2L * _items.Length));
            }

            int child = Count++;
            while (child > 0)
            {
                int parent = (child - 1) >> 1;
                if (_items[parent] <= item)
                {
                    break;
                }

                _items[child] = _items[parent];
                child = parent;
            }

            _items[child] = item;
        }

        public long Pop()
        {
            long top = _items[0];
            long last = _items[--Count];
            int parent = 0;
            while (true)
            {
                int child = 2 * parent + 1;
                if (child >= Count)
                {
                    break;
                }

                if (child + 1 < Count && _items[child + 1] < _items[child])
                {
                    child++;
                }

                if (last <= _items[child])
                {
                    break;
                }

                _items[parent] = _items[child];
                parent = child;
            }

            _items[parent] = last;
            return top;
        }
    }
}
