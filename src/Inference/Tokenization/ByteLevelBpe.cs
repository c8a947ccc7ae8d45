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
    private readonly MergeTable _merges;

    /// <param name="idByByte">For each byte, the id of the token that is exactly that byte; -1 where the
    /// vocabulary has none (such bytes are dropped, as Microsoft.ML.Tokenizers drops them).</param>
    /// <param name="merges">(left id, right id) to (rank, merged id), see <see cref="PairKey"/> and <see cref="MergeValue"/>.</param>
    public ByteLevelBpe(int[] idByByte, MergeTable merges)
    {
        _idByByte = idByByte;
        _merges = merges;
    }

    public static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    public static long MergeValue(int rank, int mergedId) => ((long)rank << 32) | (uint)mergedId;

    /// <summary>Appends the ids of one word's bytes, merged, to <paramref name="ids"/>.</summary>
    public void EncodeWord(ReadOnlySpan<byte> word, List<int> ids, Workspace workspace, CancellationToken cancellationToken)
    {
        workspace.EnsureCapacity(word.Length);
        Symbol[] symbols = workspace.Symbols;

        int count = 0;
        foreach (byte value in word)
        {
            int id = _idByByte[value];
            if (id >= 0)
            {
                symbols[count++].Id = id;
            }
        }

        Merge(count, ids, workspace, cancellationToken);
    }

    /// <summary>
    /// Merges the first <paramref name="count"/> of <paramref name="workspace"/>'s symbols, whose ids the caller
    /// has set (SentencePiece-style BPE starts from one symbol per character or fallback byte, not per byte),
    /// and appends the result to <paramref name="ids"/>.
    /// </summary>
    public void Merge(int count, List<int> ids, Workspace workspace, CancellationToken cancellationToken)
    {
        Symbol[] symbols = workspace.Symbols;
        if (count <= 1)
        {
            if (count == 1)
            {
                ids.Add(symbols[0].Id);
            }

            return;
        }

        MergeHeap heap = workspace.Heap;
        heap.Clear();
        for (int i = 0; i < count; i++)
        {
            symbols[i].Previous = i - 1;
            symbols[i].Next = i + 1 < count ? i + 1 : NoSymbol;
            if (i + 1 < count && _merges.TryGetValue(PairKey(symbols[i].Id, symbols[i + 1].Id), out long merge))
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
            ref Symbol symbol = ref symbols[position];
            int right = symbol.Next;
            // Merged away (its left neighbour absorbed it), or last in the word.
            if (symbol.Id == NoSymbol || right == NoSymbol)
            {
                continue;
            }

            // The pair here changed since this candidate was pushed: a stale entry.
            ref Symbol rightSymbol = ref symbols[right];
            if (!_merges.TryGetValue(PairKey(symbol.Id, rightSymbol.Id), out long merge) || (int)(merge >> 32) != rank)
            {
                continue;
            }

            symbol.Id = (int)(uint)merge;
            rightSymbol.Id = NoSymbol;
            int afterRight = rightSymbol.Next;
            symbol.Next = afterRight;
            if (afterRight != NoSymbol)
            {
                ref Symbol next = ref symbols[afterRight];
                next.Previous = position;
                if (_merges.TryGetValue(PairKey(symbol.Id, next.Id), out long withNext))
                {
                    heap.Push(Candidate(withNext, position));
                }
            }

            int before = symbol.Previous;
            if (before != NoSymbol && _merges.TryGetValue(PairKey(symbols[before].Id, symbol.Id), out long withPrevious))
            {
                heap.Push(Candidate(withPrevious, before));
            }
        }

        for (int i = 0; i != NoSymbol; i = symbols[i].Next)
        {
            ids.Add(symbols[i].Id);
        }
    }

    // Ordered by rank, then by position: the leftmost of equal-rank pairs merges first.
    private static long Candidate(long merge, int position) => (merge & ~0xFFFFFFFFL) | (uint)position;

    /// <summary>
    /// (left id, right id) to (rank, merged id): an open-addressing table of packed longs, looked up
    /// several times per byte of a word. (A Dictionary&lt;long, long&gt; was measurably slower here, and with
    /// long's own hash, upper ^ lower 32 bits, every pair (x, x) fell in one bucket.)
    /// </summary>
    public sealed class MergeTable
    {
        private const long Empty = -1;
        private long[] _keys = [];
        private long[] _values = [];
        private int _mask;

        public MergeTable(int capacity)
        {
            int size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(16, 2 * capacity));
            _keys = new long[size];
            _values = new long[size];
            Array.Fill(_keys, Empty);
            _mask = size - 1;
        }

        public int Count { get; private set; }

        /// <summary>Adds or replaces; the table is sized for its merges up front and never grows.</summary>
        public void Set(long key, long value)
        {
            if (Count >= _keys.Length / 2)
            {
                throw new InvalidOperationException("the merge table is full");
            }
            int slot = Slot(key);
            if (_keys[slot] == Empty)
            {
                _keys[slot] = key;
                Count++;
            }
            _values[slot] = value;
        }

        public bool TryGetValue(long key, out long value)
        {
            int slot = Slot(key);
            value = _values[slot];
            return _keys[slot] != Empty;
        }

        // The slot holding key, or the empty slot where it would go.
        private int Slot(long key)
        {
            int slot = (int)((ulong)key * 0x9E3779B97F4A7C15UL >> 32) & _mask;
            while (_keys[slot] != key && _keys[slot] != Empty)
            {
                slot = (slot + 1) & _mask;
            }
            return slot;
        }
    }

    /// <summary>One symbol of a word being merged: its token and its neighbours, side by side in memory.</summary>
    public struct Symbol
    {
        public int Id;
        public int Next;
        public int Previous;
    }

    /// <summary>Scratch space for one encode call, grown to the longest word seen; not thread-safe.</summary>
    public sealed class Workspace
    {
        public Symbol[] Symbols { get; private set; } = new Symbol[64];
        public MergeHeap Heap { get; } = new();

        public void EnsureCapacity(int length)
        {
            if (Symbols.Length >= length)
            {
                return;
            }

            // A plain array, not ArrayPool.Shared: a huge word's array is garbage after this call
            // instead of being kept by the pool for the life of the process.
            Symbols = new Symbol[(int)Math.Min(Array.MaxLength, Math.Max(length, 2L * Symbols.Length))];
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
