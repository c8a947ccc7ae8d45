using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// A tokenizer's vocabulary as a byte trie, flattened in pre-order, for computing which tokens a grammar allows
/// next. Tokens that share a prefix share the matcher's work on it, and a refused byte skips every token below it
/// at once, which is what makes a full mask over 50k to 150k tokens affordable each step. Immutable: build it
/// once per tokenizer and share it.
/// </summary>
public sealed class TokenTrie
{
    // Node i (pre-order): the byte it adds to its parent's prefix, its depth (1 for a first byte), the index just
    // past its subtree, and the tokens whose bytes end exactly here: _tokens[_tokenStart[i] .. _tokenStart[i+1]).
    private readonly byte[] _byte;
    private readonly int[] _depth;
    private readonly int[] _subtreeEnd;
    private readonly int[] _tokenStart;
    private readonly int[] _tokens;
    // Whether every byte of node i's subtree, its own included, keeps a string plain (printable ASCII but '"'
    // and '\\'): inside a string such a subtree is allowed whole, without stepping the matcher through it.
    private readonly bool[] _plainSubtree;
    // Read from inside a string in its plain state, every token either stays in the string (judged without regard
    // to what follows the string, so fixed per vocabulary: this mask and count), is refused by the string's own rules
    // (an invalid UTF-8 piece), or closes the string at some byte and goes on: those leaving tokens, with the bytes
    // after their closing quote, are all the grammar has to judge. Most of a reply is string content, and a byte-level
    // vocabulary of 150k tokens has a few thousand that leave.
    // The staying tokens are filed by how much they lengthen the string's shortest completion (ending inside an
    // escape or a UTF-8 sequence): _stringTokens[e] holds those that add at most e bytes, so a budget near max_tokens
    // picks a mask without walking the trie.
    private readonly ulong[][] _stringTokens;
    private readonly int[] _stringTokenCount;
    private readonly int[] _leavingIds;
    private readonly byte[][] _leavingSuffixes;
    // The leaving tokens sorted by the byte after their quote: those with none first, then those after byte b from
    // _leavingByFirstByte[b] to _leavingByFirstByte[b + 1]. Few bytes may follow a closed string, so whole groups
    // are refused with one step.
    private readonly int[] _leavingByFirstByte;
    private readonly int[] _endOfSequenceIds;
    private readonly int _maxDepth;

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ITokenizer, Lazy<TokenTrie>> ByTokenizer = new();

    /// <summary>
    /// The trie of <paramref name="tokenizer"/>'s vocabulary, built on first use and shared by every model with that
    /// tokenizer (a base and its adapters) for as long as the tokenizer lives.
    /// </summary>
    public static TokenTrie For(ITokenizer tokenizer) =>
        ByTokenizer.GetValue(tokenizer, t => new Lazy<TokenTrie>(() => new TokenTrie(t))).Value;

    public TokenTrie(ITokenizer tokenizer)
    {
        VocabSize = tokenizer.VocabSize;
        _endOfSequenceIds = [.. tokenizer.EndOfSequenceIds];

        // Special tokens (end of sequence included) are never grammar text: their bytes spell a marker such as
        // "<|endoftext|>", not JSON the reply contains. End of sequence is allowed only where the document can end.
        var ids = new List<int>();
        var bytes = new byte[tokenizer.VocabSize][];
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            if (tokenizer.IsValidId(id) && !tokenizer.IsSpecialId(id) && tokenizer.TokenBytes(id).Length > 0)
            {
                bytes[id] = tokenizer.TokenBytes(id).ToArray();
                ids.Add(id);
            }
        }

        // Sorted by bytes, each token's prefix nodes come right before it, so the pre-order falls out of one pass.
        ids.Sort((a, b) => bytes[a].AsSpan().SequenceCompareTo(bytes[b]) is var c && c != 0 ? c : a.CompareTo(b));

        var nodeByte = new List<byte>();
        var depth = new List<int>();
        var subtreeEnd = new List<int>();
        var tokenStart = new List<int>();
        var tokens = new List<int>();
        var path = new List<int>(); // path[d - 1]: the open node at depth d
        byte[] previous = [];
        foreach (int id in ids)
        {
            byte[] current = bytes[id];
            int common = current.AsSpan().CommonPrefixLength(previous);
            for (int d = path.Count; d > common; d--)
            {
                subtreeEnd[path[d - 1]] = nodeByte.Count;
                path.RemoveAt(d - 1);
            }

            for (int d = common + 1; d <= current.Length; d++)
            {
                path.Add(nodeByte.Count);
                nodeByte.Add(current[d - 1]);
                depth.Add(d);
                subtreeEnd.Add(-1);
                tokenStart.Add(tokens.Count);
            }

            tokens.Add(id);
            previous = current;
        }

        foreach (int open in path)
        {
            subtreeEnd[open] = nodeByte.Count;
        }

        tokenStart.Add(tokens.Count);
        _byte = [.. nodeByte];
        _depth = [.. depth];
        _subtreeEnd = [.. subtreeEnd];
        _tokenStart = [.. tokenStart];
        _tokens = [.. tokens];
        _maxDepth = depth.Count == 0 ? 0 : depth.Max();

        // notPlainBefore[k]: how many of nodes 0 .. k-1 hold a byte that leaves a string's plain state.
        var notPlainBefore = new int[_byte.Length + 1];
        for (int i = 0; i < _byte.Length; i++)
        {
            notPlainBefore[i + 1] = notPlainBefore[i] + (StringFrame.KeepsPlain(_byte[i]) ? 0 : 1);
        }

        _plainSubtree = new bool[_byte.Length];
        for (int i = 0; i < _byte.Length; i++)
        {
            _plainSubtree[i] = notPlainBefore[_subtreeEnd[i]] == notPlainBefore[i];
        }

        (_stringTokens, _stringTokenCount, _leavingIds, _leavingSuffixes) = ClassifyFromInsideAString(bytes);
        int[] order = [.. Enumerable.Range(0, _leavingIds.Length).OrderBy(i => _leavingSuffixes[i].Length == 0 ? -1 : _leavingSuffixes[i][0])];
        _leavingIds = [.. order.Select(i => _leavingIds[i])];
        _leavingSuffixes = [.. order.Select(i => _leavingSuffixes[i])];
        _leavingByFirstByte = new int[257];
        int next = 0;
        while (next < _leavingSuffixes.Length && _leavingSuffixes[next].Length == 0)
        {
            next++;
        }

        for (int b = 0; b < 256; b++)
        {
            _leavingByFirstByte[b] = next;
            while (next < _leavingSuffixes.Length && _leavingSuffixes[next][0] == b)
            {
                next++;
            }
        }

        _leavingByFirstByte[256] = next;
    }

    private (ulong[][] Masks, int[] Counts, int[] LeavingIds, byte[][] LeavingSuffixes) ClassifyFromInsideAString(byte[][] bytes)
    {
        // The matcher itself judges what stays inside a string, so this can never disagree with it.
        var matcher = new GrammarMatcher(new JsonGrammar(StringNode.Instance));
        matcher.TryAdvance((byte)'"');
        var states = new MatcherState[_maxDepth + 1];
        states[0] = matcher.Save();
        var masks = new ulong[StringFrame.MaxExtraToClose + 1][];
        for (int e = 0; e < masks.Length; e++)
        {
            masks[e] = new ulong[MaskWords];
        }

        var counts = new int[masks.Length];
        int plainMin = matcher.MinBytesToEnd;
        var leavingIds = new List<int>();
        var leavingSuffixes = new List<byte[]>();
        int node = 0;
        while (node < _byte.Length)
        {
            matcher.Restore(states[_depth[node] - 1]);
            if (!matcher.TryAdvance(_byte[node]))
            {
                node = _subtreeEnd[node]; // refused inside the string, and so is every token below
                continue;
            }

            if (matcher.IsFinished)
            {
                // The string closes at this byte: every token below goes on after the quote.
                for (int t = _tokenStart[node]; t < _tokenStart[_subtreeEnd[node]]; t++)
                {
                    leavingIds.Add(_tokens[t]);
                    leavingSuffixes.Add(bytes[_tokens[t]][_depth[node]..]);
                }

                node = _subtreeEnd[node];
                continue;
            }

            states[_depth[node]] = matcher.Save();
            int extra = matcher.MinBytesToEnd - plainMin;
            for (int t = _tokenStart[node]; t < _tokenStart[node + 1]; t++)
            {
                for (int e = extra; e < masks.Length; e++)
                {
                    masks[e][_tokens[t] >> 6] |= 1UL << (_tokens[t] & 63);
                    counts[e]++;
                }
            }

            node++;
        }

        return (masks, counts, [.. leavingIds], [.. leavingSuffixes]);
    }

    public int VocabSize { get; }

    /// <summary>Trie nodes: the most matcher steps one full mask can take.</summary>
    public int NodeCount => _byte.Length;

    /// <summary>The length of a bitmask over the vocabulary, in 64-bit words.</summary>
    public int MaskWords => (VocabSize + 63) / 64;

    /// <summary>
    /// Sets in <paramref name="mask"/> (bit <c>id</c>, cleared first) every token whose bytes the matcher accepts
    /// from its current state, and the end-of-sequence tokens when the document can end there. The matcher is
    /// left in the state it was given. Returns how many tokens are allowed.
    /// </summary>
    /// <param name="maxBytesToEnd">
    /// Allow only tokens after which the document can still be completed in this many bytes: how a reply closes
    /// its document before max_tokens rather than being cut off inside it.
    /// </param>
    public int AllowedTokens(GrammarMatcher matcher, Span<ulong> mask, int maxBytesToEnd = int.MaxValue)
    {
        if (mask.Length < MaskWords)
        {
            throw new ArgumentException($"the mask needs {MaskWords} words", nameof(mask));
        }

        int allowed = 0;
        // states[d]: the matcher after the current path's first d bytes. Restoring is a reference assignment,
        // so moving between siblings costs nothing beyond the byte they differ in.
        var states = new MatcherState[_maxDepth + 1];
        states[0] = matcher.Save();
        bool inStringAtRoot = matcher.IsInPlainString;
        // Inside a string the document's shortest completion stays the same after plain characters, and grows by
        // at most an escape's or UTF-8 sequence's few bytes after any other token that stays in the string.
        bool budgeted = maxBytesToEnd != int.MaxValue;
        int minNow = budgeted ? matcher.MinBytesToEnd : 0;
        if (inStringAtRoot)
        {
            // Staying tokens that fit the budget, from their file; then the ones that close the string.
            int extra = budgeted ? Math.Min(StringFrame.MaxExtraToClose, maxBytesToEnd - minNow) : StringFrame.MaxExtraToClose;
            if (extra >= 0)
            {
                _stringTokens[extra].CopyTo(mask);
                allowed = _stringTokenCount[extra];
            }
            else
            {
                mask.Clear();
            }

            return allowed + LeavingTokens(matcher, mask, budgeted, maxBytesToEnd); // a string cannot end the document
        }

        mask.Clear();
        int node = 0;
        while (node < _byte.Length)
        {
            int d = _depth[node];
            matcher.Restore(states[d - 1]);
            // The state here may be a later string than the one at the root (the path closed one and opened
            // another), so its own shortest completion decides.
            if (_plainSubtree[node] && matcher.IsInPlainString && (!budgeted || matcher.MinBytesToEnd <= maxBytesToEnd))
            {
                // Every token below is accepted, as the subtree stays inside the string: its tokens are
                // contiguous in pre-order.
                for (int t = _tokenStart[node]; t < _tokenStart[_subtreeEnd[node]]; t++)
                {
                    int id = _tokens[t];
                    mask[id >> 6] |= 1UL << (id & 63);
                }

                allowed += _tokenStart[_subtreeEnd[node]] - _tokenStart[node];
                node = _subtreeEnd[node];
                continue;
            }

            if (!matcher.TryAdvance(_byte[node]))
            {
                node = _subtreeEnd[node];
                continue;
            }

            states[d] = matcher.Save();
            if (budgeted && _tokenStart[node] < _tokenStart[node + 1] && matcher.MinBytesToEnd > maxBytesToEnd)
            {
                node++; // this prefix's own tokens overshoot the budget; longer ones below may close and fit
                continue;
            }

            for (int t = _tokenStart[node]; t < _tokenStart[node + 1]; t++)
            {
                int id = _tokens[t];
                mask[id >> 6] |= 1UL << (id & 63);
                allowed++;
            }

            node++;
        }

        matcher.Restore(states[0]);
        if (matcher.CanEnd)
        {
            foreach (int id in _endOfSequenceIds)
            {
                if ((mask[id >> 6] & (1UL << (id & 63))) == 0)
                {
                    mask[id >> 6] |= 1UL << (id & 63);
                    allowed++;
                }
            }
        }

        return allowed;
    }

    /// <summary>Adds the tokens that close the string the matcher is in and go on with bytes the grammar accepts.</summary>
    private int LeavingTokens(GrammarMatcher matcher, Span<ulong> mask, bool budgeted, int maxBytesToEnd)
    {
        MatcherState inString = matcher.Save();
        int allowed = 0;
        if (matcher.TryAdvance((byte)'"'))
        {
            MatcherState closed = matcher.Save();
            if (!budgeted || matcher.MinBytesToEnd <= maxBytesToEnd)
            {
                for (int i = 0; i < _leavingByFirstByte[0]; i++)
                {
                    mask[_leavingIds[i] >> 6] |= 1UL << (_leavingIds[i] & 63);
                    allowed++;
                }
            }

            for (int b = 0; b < 256; b++)
            {
                int from = _leavingByFirstByte[b];
                int to = _leavingByFirstByte[b + 1];
                matcher.Restore(closed);
                if (from == to || !matcher.TryAdvance((byte)b))
                {
                    continue;
                }

                MatcherState afterFirst = matcher.Save();
                for (int i = from; i < to; i++)
                {
                    matcher.Restore(afterFirst);
                    if (matcher.TryAdvance(_leavingSuffixes[i].AsSpan(1)) && (!budgeted || matcher.MinBytesToEnd <= maxBytesToEnd))
                    {
                        mask[_leavingIds[i] >> 6] |= 1UL << (_leavingIds[i] & 63);
                        allowed++;
                    }
                }
            }
        }

        matcher.Restore(inString);
        return allowed;
    }

    /// <summary>
    /// Clears in <paramref name="mask"/> every token that begins with <paramref name="prefix"/> and whose bytes
    /// <paramref name="matcher"/> refuses: the tokens that would complete a trigger with text the grammar the trigger
    /// starts does not allow. Returns how many were cleared; the matcher is left as it was given.
    /// </summary>
    public int ClearRefused(ReadOnlySpan<byte> prefix, GrammarMatcher matcher, Span<ulong> mask)
    {
        // Find the node that spells the prefix: children follow their parent in pre-order, siblings by subtree.
        int node = 0;
        int end = _byte.Length;
        for (int d = 1; d <= prefix.Length; d++)
        {
            while (node < end && _byte[node] != prefix[d - 1])
            {
                node = _subtreeEnd[node];
            }

            if (node >= end)
            {
                return 0;
            }

            if (d < prefix.Length)
            {
                end = _subtreeEnd[node];
                node++;
            }
        }

        MatcherState start = matcher.Save();
        var states = new MatcherState[_maxDepth + 1];
        int top = _depth[node];
        int cleared = 0;
        if (!matcher.TryAdvance(prefix[..^1]))
        {
            matcher.Restore(start);
            return ClearTokens(node, _subtreeEnd[node], mask);
        }

        states[top - 1] = matcher.Save();
        for (int i = node; i < _subtreeEnd[node];)
        {
            matcher.Restore(states[_depth[i] - 1]);
            if (!matcher.TryAdvance(_byte[i]))
            {
                cleared += ClearTokens(i, _subtreeEnd[i], mask);
                i = _subtreeEnd[i];
                continue;
            }

            states[_depth[i]] = matcher.Save();
            i++;
        }

        matcher.Restore(start);
        return cleared;
    }

    private int ClearTokens(int from, int to, Span<ulong> mask)
    {
        for (int t = _tokenStart[from]; t < _tokenStart[to]; t++)
        {
            mask[_tokens[t] >> 6] &= ~(1UL << (_tokens[t] & 63));
        }

        return _tokenStart[to] - _tokenStart[from];
    }

    public static bool IsAllowed(ReadOnlySpan<ulong> mask, int id) => (mask[id >> 6] & (1UL << (id & 63))) != 0;
}
