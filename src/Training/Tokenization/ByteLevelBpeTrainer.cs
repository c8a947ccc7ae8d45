using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Training.Tokenization;

/// <summary>
/// Learns a GPT-2 style byte-level BPE vocabulary from a corpus. Text is pre-tokenized exactly as
/// <see cref="Gpt2Tokenizer"/> does (end-of-text markers cut out, then GPT-2's split regex, then UTF-8
/// bytes), so every learned merge is one the tokenizer will actually apply.
/// </summary>
/// <remarks>
/// Each distinct pre-tokenized word is counted once; merging then works on (word, count) pairs. Pair
/// counts and the words each pair occurs in are kept up to date incrementally: a merge touches only
/// the words that contain its pair, so thousands of merges over megabytes of text take seconds.
/// The next merge is the most frequent pair, ties going to the ordinally smaller left token string,
/// then right token string. That order depends on nothing but the counts, so the same corpus gives
/// byte-identical files whatever order its documents or words are visited in.
/// </remarks>
public sealed class ByteLevelBpeTrainer
{
    // Compiled once per process: the pattern is large (it spells out astral letters) and slow to build.
    private static readonly Lazy<Regex> SplitRegex = new(Gpt2SplitPattern.Create);

    private readonly ByteLevelBpeOptions _options;

    // Symbol ids: 0..255 the bytes in GPT-2's vocab.json order, then learned tokens in creation order.
    private readonly List<string> _tokens;
    private readonly Dictionary<string, int> _idByToken;
    private readonly byte[] _byteById;

    // One entry per distinct word: its current symbols and how often it occurs in the corpus.
    private readonly List<int[]> _wordSymbols = [];
    private readonly List<long> _wordCounts = [];

    private readonly Dictionary<SymbolPair, long> _pairCounts = [];
    private readonly Dictionary<SymbolPair, HashSet<int>> _wordsContainingPair = [];

    // Entries go stale as counts change; TryTakeMostFrequentPair checks each against _pairCounts.
    private readonly PriorityQueue<CandidateMerge, CandidateMerge> _candidates;

    private ByteLevelBpeTrainer(ByteLevelBpeOptions options)
    {
        _options = options;
        (_tokens, _byteById) = ByteTokensInGpt2Order();
        _idByToken = _tokens.Select((token, id) => (token, id)).ToDictionary(entry => entry.token, entry => entry.id, StringComparer.Ordinal);
        _candidates = new PriorityQueue<CandidateMerge, CandidateMerge>(Comparer<CandidateMerge>.Create(CompareMergeOrder));
    }

    public static ByteLevelBpeVocabulary Train(IEnumerable<string> documents, ByteLevelBpeOptions options)
    {
        ArgumentNullException.ThrowIfNull(documents);
        ArgumentNullException.ThrowIfNull(options);
        if (options.VocabularySize < ByteLevelBpeOptions.MinimumVocabularySize)
        {
            throw new ArgumentException(
                $"VocabularySize is {options.VocabularySize}, but a byte-level BPE vocabulary needs at least " +
                $"{ByteLevelBpeOptions.MinimumVocabularySize} ids: the 256 byte tokens and {ByteLevelBpeVocabulary.EndOfTextToken}.",
                nameof(options));
        }

        if (options.MinimumPairCount < 1)
        {
            throw new ArgumentException(
                $"MinimumPairCount is {options.MinimumPairCount}; it must be at least 1.", nameof(options));
        }

        var trainer = new ByteLevelBpeTrainer(options);
        trainer.AddWords(CountWords(documents));
        return trainer.LearnMerges();
    }

    /// <summary>
    /// Counts pre-tokenized words the way Gpt2Tokenizer splits text: the end-of-text marker is a
    /// special token (its own id, never part of a word), and the text between markers goes through
    /// GPT-2's regex. Lone surrogates need no special case: the regex files them under "other" like
    /// the U+FFFD Gpt2Tokenizer swaps them for, and UTF-8 encoding writes them as U+FFFD's bytes.
    /// </summary>
    private static Dictionary<string, long> CountWords(IEnumerable<string> documents)
    {
        var wordCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        // Looking words up by span avoids allocating a string for each of the millions of repeats.
        var lookup = wordCounts.GetAlternateLookup<ReadOnlySpan<char>>();
        foreach (string document in documents)
        {
            if (document is null)
            {
                throw new ArgumentException("documents contains a null entry.", nameof(documents));
            }

            foreach (string segment in document.Split(ByteLevelBpeVocabulary.EndOfTextToken, StringSplitOptions.None))
            {
                foreach (ValueMatch match in SplitRegex.Value.EnumerateMatches(segment))
                {
                    CollectionsMarshal.GetValueRefOrAddDefault(lookup, segment.AsSpan(match.Index, match.Length), out _)++;
                }
            }
        }

        return wordCounts;
    }

    /// <summary>
    /// GPT-2's vocab.json gives ids 0..255 to the byte-level characters in code point order (the
    /// printable Latin-1 bytes, which stand for themselves, come first; the rest were mapped to
    /// U+0100 upwards), so sorting the alphabet reproduces its first 256 entries exactly.
    /// </summary>
    private static (List<string> Tokens, byte[] ByteById) ByteTokensInGpt2Order()
    {
        byte[] byteById = Enumerable.Range(0, 256).Select(value => (byte)value)
            .OrderBy(ByteLevelAlphabet.ToChar)
            .ToArray();
        List<string> tokens = byteById.Select(value => ByteLevelAlphabet.ToChar(value).ToString()).ToList();
        return (tokens, byteById);
    }

    private void AddWords(Dictionary<string, long> wordCounts)
    {
        var idByByte = new int[256];
        for (int id = 0; id < 256; id++)
        {
            idByByte[_byteById[id]] = id;
        }

        foreach ((string word, long count) in wordCounts)
        {
            int[] symbols = Encoding.UTF8.GetBytes(word).Select(value => idByByte[value]).ToArray();
            int wordIndex = _wordSymbols.Count;
            _wordSymbols.Add(symbols);
            _wordCounts.Add(count);
            for (int i = 0; i + 1 < symbols.Length; i++)
            {
                var pair = new SymbolPair(symbols[i], symbols[i + 1]);
                if (IsMergeable(pair))
                {
                    CollectionsMarshal.GetValueRefOrAddDefault(_pairCounts, pair, out _) += count;
                    WordsContaining(pair).Add(wordIndex);
                }
            }
        }

        foreach ((SymbolPair pair, long count) in _pairCounts)
        {
            _candidates.Enqueue(new CandidateMerge(pair, count), new CandidateMerge(pair, count));
        }
    }

    private ByteLevelBpeVocabulary LearnMerges()
    {
        var merges = new List<(string Left, string Right)>();
        var pairCountChanges = new Dictionary<SymbolPair, long>();
        int learnedTokenLimit = _options.VocabularySize - 1;   // the last id is <|endoftext|>
        while (_tokens.Count < learnedTokenLimit
               && TryTakeMostFrequentPair(out SymbolPair pair, out long count)
               && count >= _options.MinimumPairCount)
        {
            string mergedToken = _tokens[pair.Left] + _tokens[pair.Right];
            int mergedId = _tokens.Count;
            // Add, not TryAdd: a second pair spelling an existing token cannot arise (every word is
            // segmented by replaying the same merges, so equal bytes untouched by their neighbours
            // always split the same way; random corpora never produced one). Were that reasoning
            // wrong, throwing beats writing a vocab.json with a duplicate key.
            _idByToken.Add(mergedToken, mergedId);
            _tokens.Add(mergedToken);
            merges.Add((_tokens[pair.Left], _tokens[pair.Right]));
            ApplyMerge(pair, mergedId, pairCountChanges);
        }

        return new ByteLevelBpeVocabulary([.. _tokens, ByteLevelBpeVocabulary.EndOfTextToken], merges);
    }

    /// <summary>Replaces the pair in every word holding it and updates the counts of the pairs around it.</summary>
    private void ApplyMerge(SymbolPair pair, int mergedId, Dictionary<SymbolPair, long> pairCountChanges)
    {
        pairCountChanges.Clear();
        _wordsContainingPair.Remove(pair, out HashSet<int>? wordIndices);
        foreach (int wordIndex in wordIndices!)
        {
            int[] before = _wordSymbols[wordIndex];
            int[] after = Merge(before, pair, mergedId);
            if (ReferenceEquals(after, before))
            {
                continue;   // an earlier merge already consumed the pair in this word
            }

            long count = _wordCounts[wordIndex];
            AddPairCounts(before, -count, pairCountChanges);
            AddPairCounts(after, count, pairCountChanges);
            for (int i = 0; i + 1 < after.Length; i++)
            {
                var neighbour = new SymbolPair(after[i], after[i + 1]);
                // Only pairs with the new symbol can be new to this word; the others were indexed already.
                if ((neighbour.Left == mergedId || neighbour.Right == mergedId) && IsMergeable(neighbour))
                {
                    WordsContaining(neighbour).Add(wordIndex);
                }
            }

            _wordSymbols[wordIndex] = after;
        }

        foreach ((SymbolPair changed, long change) in pairCountChanges)
        {
            if (change == 0)
            {
                continue;   // a neighbour that the merge left in place
            }

            long updated = _pairCounts.GetValueOrDefault(changed) + change;
            if (updated == 0)
            {
                _pairCounts.Remove(changed);
                _wordsContainingPair.Remove(changed);
            }
            else
            {
                _pairCounts[changed] = updated;
            }

            // A decrease leaves a stale, too-high entry that is corrected when it surfaces; an
            // increase must be queued now or the pair could be passed over.
            if (change > 0)
            {
                _candidates.Enqueue(new CandidateMerge(changed, updated), new CandidateMerge(changed, updated));
            }
        }
    }

    /// <summary>
    /// Pops the best pair whose queued count is still current. Every pair has a queued entry at least
    /// as high as its real count, so the first current entry to surface is the true maximum.
    /// </summary>
    private bool TryTakeMostFrequentPair(out SymbolPair pair, out long count)
    {
        while (_candidates.TryDequeue(out CandidateMerge candidate, out _))
        {
            long current = _pairCounts.GetValueOrDefault(candidate.Pair);
            if (current == candidate.Count)
            {
                (pair, count) = (candidate.Pair, current);
                return true;
            }

            // Fell since queued: requeue at its real count. Rose since queued: a newer entry exists.
            if (current > 0 && current < candidate.Count)
            {
                _candidates.Enqueue(candidate with { Count = current }, candidate with { Count = current });
            }
        }

        (pair, count) = (default, 0);
        return false;
    }

    /// <summary>The symbols with each non-overlapping occurrence of the pair, left to right, merged; the same array if there is none.</summary>
    private static int[] Merge(int[] symbols, SymbolPair pair, int mergedId)
    {
        List<int>? merged = null;
        for (int i = 0; i < symbols.Length; i++)
        {
            if (i + 1 < symbols.Length && symbols[i] == pair.Left && symbols[i + 1] == pair.Right)
            {
                merged ??= new List<int>(symbols.AsSpan(0, i).ToArray());
                merged.Add(mergedId);
                i++;
            }
            else
            {
                merged?.Add(symbols[i]);
            }
        }

        return merged is null ? symbols : [.. merged];
    }

    private void AddPairCounts(int[] symbols, long count, Dictionary<SymbolPair, long> into)
    {
        for (int i = 0; i + 1 < symbols.Length; i++)
        {
            var pair = new SymbolPair(symbols[i], symbols[i + 1]);
            if (IsMergeable(pair))
            {
                CollectionsMarshal.GetValueRefOrAddDefault(into, pair, out _) += count;
            }
        }
    }

    private HashSet<int> WordsContaining(SymbolPair pair)
    {
        ref HashSet<int>? words = ref CollectionsMarshal.GetValueRefOrAddDefault(_wordsContainingPair, pair, out _);
        return words ??= [];
    }

    /// <summary>
    /// With SplitDigits no merge may touch an ASCII digit. Merged tokens then never contain one, so
    /// only the ten single-byte digit symbols need checking.
    /// </summary>
    private bool IsMergeable(SymbolPair pair) =>
        !_options.SplitDigits || (!IsAsciiDigitByte(pair.Left) && !IsAsciiDigitByte(pair.Right));

    private bool IsAsciiDigitByte(int id) => id < 256 && char.IsAsciiDigit((char)_byteById[id]);

    /// <summary>Negative when <paramref name="x"/> should be merged first: higher count, then ordinal token strings.</summary>
    private int CompareMergeOrder(CandidateMerge x, CandidateMerge y)
    {
        int byCount = y.Count.CompareTo(x.Count);
        if (byCount != 0)
        {
            return byCount;
        }

        int byLeft = string.CompareOrdinal(_tokens[x.Pair.Left], _tokens[y.Pair.Left]);
        return byLeft != 0 ? byLeft : string.CompareOrdinal(_tokens[x.Pair.Right], _tokens[y.Pair.Right]);
    }

    private readonly record struct SymbolPair(int Left, int Right);

    private readonly record struct CandidateMerge(SymbolPair Pair, long Count);
}
