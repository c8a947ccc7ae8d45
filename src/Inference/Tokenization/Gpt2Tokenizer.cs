using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// GPT-2's byte-level BPE tokenizer, loaded from a Hugging Face style directory
/// (<c>vocab.json</c>, <c>merges.txt</c>, optionally <c>tokenizer_config.json</c> /
/// <c>special_tokens_map.json</c>). Encoding reproduces OpenAI's encoder; the end-of-text token
/// written inside the text is encoded as its special id, as Hugging Face's GPT2Tokenizer does.
/// Instances are immutable and safe to share between threads.
/// </summary>
/// <remarks>
/// Encoding costs O(n log n) in the text's length whatever its shape (one 20 MB word included),
/// can be cancelled, and can stop once a token budget is exceeded. The pre-tokenization is GPT-2's
/// split regex (<see cref="Gpt2SplitPattern"/>, linear here); the merges are <see cref="ByteLevelBpe"/>.
/// Microsoft.ML.Tokenizers' <c>BpeTokenizer</c> merges the ordinary words, up to
/// <see cref="LibraryWordBytes"/> bytes, with its word cache; longer words go to
/// <see cref="ByteLevelBpe"/>, because the library's merge loop is quadratic in a word's length and
/// one long word (a 20 MB body of one letter) would hold a core for hours. Both give OpenAI's ids;
/// the tests compare them on long runs.
/// </remarks>
public sealed class Gpt2Tokenizer : ITokenizer
{
    public const string DefaultEndOfTextToken = "<|endoftext|>";

    private const string VocabularyFileName = "vocab.json";
    private const string MergesFileName = "merges.txt";
    private const string TokenizerConfigFileName = "tokenizer_config.json";
    private const string SpecialTokensMapFileName = "special_tokens_map.json";

    // Shared by every instance: the pattern never changes and building and compiling it takes tens of ms.
    private static readonly Lazy<Regex> SplitRegex = new(Gpt2SplitPattern.Create);

    private static readonly UTF8Encoding Utf8WithReplacement =
        new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    // Pre-tokenized words between two cancellation checks.
    private const int CancellationCheckInterval = 256;

    /// <summary>Words up to this many UTF-8 bytes are merged by the library: its quadratic term stays a small constant per byte.</summary>
    public const int LibraryWordBytes = 128;

    private readonly BpeTokenizer _libraryBpe;
    private readonly ByteLevelBpe _bpe;

    // All token byte strings laid end to end; id i owns [_tokenByteOffsets[i], _tokenByteOffsets[i + 1]).
    private readonly byte[] _tokenBytes;
    private readonly int[] _tokenByteOffsets;
    private readonly bool[] _isDefinedId;

    private Gpt2Tokenizer(
        BpeTokenizer libraryBpe,
        ByteLevelBpe bpe,
        byte[] tokenBytes,
        int[] tokenByteOffsets,
        bool[] isDefinedId,
        int vocabSize,
        string endOfTextToken,
        int endOfTextId)
    {
        _libraryBpe = libraryBpe;
        _bpe = bpe;
        _tokenBytes = tokenBytes;
        _tokenByteOffsets = tokenByteOffsets;
        _isDefinedId = isDefinedId;
        VocabSize = vocabSize;
        EndOfTextToken = endOfTextToken;
        EndOfTextId = endOfTextId;
        int longest = 1;
        for (int id = 0; id < isDefinedId.Length; id++)
        {
            longest = Math.Max(longest, tokenByteOffsets[id + 1] - tokenByteOffsets[id]);
        }

        MaxTokenByteLength = longest;
    }

    /// <summary>Number of distinct ids: those of vocab.json plus special tokens it lacks.</summary>
    public int VocabSize { get; }

    public int EndOfTextId { get; }

    public string EndOfTextToken { get; }

    /// <summary>The most bytes one token stands for (special tokens included): no token covers more of a text.</summary>
    public int MaxTokenByteLength { get; }

    public static Gpt2Tokenizer Load(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        if (!Directory.Exists(directory))
        {
            throw new DirectoryNotFoundException($"Tokenizer directory '{directory}' does not exist.");
        }

        string vocabularyPath = RequireFile(directory, VocabularyFileName);
        string mergesPath = RequireFile(directory, MergesFileName);
        Dictionary<string, int> vocabulary = ReadVocabulary(vocabularyPath);
        List<string> merges = ReadMerges(mergesPath);
        string endOfTextToken = ReadEndOfTextToken(directory) ?? DefaultEndOfTextToken;

        int endOfTextId = vocabulary.TryGetValue(endOfTextToken, out int idInVocabulary)
            ? idInVocabulary
            : vocabulary.Values.Max() + 1;
        var specialTokens = new Dictionary<string, int>(StringComparer.Ordinal) { [endOfTextToken] = endOfTextId };

        ByteLevelBpe bpe = BuildBpe(vocabulary, merges, vocabularyPath, mergesPath);
        // Checked above with messages that name the files; the library gets one word at a time, already split and without special tokens.
        BpeTokenizer libraryBpe = BpeTokenizer.Create(new BpeOptions(vocabulary) { Merges = merges, ByteLevel = true });
        var (tokenBytes, offsets, isDefined, distinctIds) = BuildTokenByteTable(vocabulary, specialTokens);
        return new Gpt2Tokenizer(libraryBpe, bpe, tokenBytes, offsets, isDefined, distinctIds, endOfTextToken, endOfTextId);
    }

    public IReadOnlyList<int> Encode(string text) => Encode(text, int.MaxValue, CancellationToken.None);

    public IReadOnlyList<int> Encode(string text, CancellationToken cancellationToken) =>
        Encode(text, int.MaxValue, cancellationToken);

    /// <summary>
    /// Encodes <paramref name="text"/>, or stops as soon as it has more than <paramref name="maxTokens"/>
    /// ids: a result longer than <paramref name="maxTokens"/> is then a prefix of the full encoding, so a
    /// caller that only needs to know the text does not fit pays for about <paramref name="maxTokens"/>
    /// tokens of work, not for the whole text.
    /// </summary>
    /// <exception cref="OperationCanceledException">The token was cancelled; checked every few hundred
    /// words and every 65,536 merges inside one long word.</exception>
    public IReadOnlyList<int> Encode(string text, int maxTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        cancellationToken.ThrowIfCancellationRequested();
        text = ReplaceLoneSurrogates(text);
        var ids = new List<int>();
        var workspace = new ByteLevelBpe.Workspace();
        byte[] wordBytes = new byte[256];
        int words = 0;
        int segmentStart = 0;
        while (true)
        {
            // The end-of-text token is cut out first; the regex splits the text between occurrences.
            int special = text.IndexOf(EndOfTextToken, segmentStart, StringComparison.Ordinal);
            int segmentEnd = special < 0 ? text.Length : special;
            ReadOnlySpan<char> segment = text.AsSpan(segmentStart, segmentEnd - segmentStart);
            foreach (ValueMatch word in SplitRegex.Value.EnumerateMatches(segment))
            {
                if (++words == CancellationCheckInterval)
                {
                    words = 0;
                    cancellationToken.ThrowIfCancellationRequested();
                }

                ReadOnlySpan<char> chars = segment.Slice(word.Index, word.Length);
                if (chars.Length * 3 <= LibraryWordBytes || Encoding.UTF8.GetByteCount(chars) <= LibraryWordBytes)
                {
                    ids.AddRange(_libraryBpe.EncodeToIds(chars, considerPreTokenization: false, considerNormalization: false));
                    if (ids.Count > maxTokens)
                    {
                        return ids;
                    }

                    continue;
                }

                int maxBytes = Encoding.UTF8.GetMaxByteCount(chars.Length);
                if (wordBytes.Length < maxBytes)
                {
                    wordBytes = new byte[Math.Max(maxBytes, 2 * wordBytes.Length)];
                }

                int byteCount = Encoding.UTF8.GetBytes(chars, wordBytes);
                _bpe.EncodeWord(wordBytes.AsSpan(0, byteCount), ids, workspace, cancellationToken);
                if (ids.Count > maxTokens)
                {
                    return ids;
                }
            }

            if (special < 0)
            {
                return ids;
            }

            ids.Add(EndOfTextId);
            if (ids.Count > maxTokens)
            {
                return ids;
            }

            segmentStart = special + EndOfTextToken.Length;
        }
    }

    /// <summary>GPT-2 has no post-processor: encoding with special tokens adds none, as Hugging Face's GPT2Tokenizer.</summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens, int maxTokens, CancellationToken cancellationToken) =>
        Encode(text, maxTokens, cancellationToken);

    /// <summary>The end-of-text token is GPT-2's only special token.</summary>
    public bool IsSpecialId(int id) => id == EndOfTextId;

    /// <summary>
    /// The fewest tokens <paramref name="text"/> can encode to: its UTF-8 length over the longest
    /// token's. Costs one pass over the text, so a prompt that cannot fit a context can be refused
    /// before it is encoded.
    /// </summary>
    public long MinTokenCount(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        // Lone surrogates count 3 bytes here, as the U+FFFD they are encoded as.
        long bytes = Encoding.UTF8.GetByteCount(text);
        return (bytes + MaxTokenByteLength - 1) / MaxTokenByteLength;
    }

    /// <summary>
    /// Concatenates the tokens' bytes and decodes them as UTF-8; malformed sequences become U+FFFD
    /// (one per maximal invalid subpart, as Python's <c>errors="replace"</c> does).
    /// </summary>
    public string Decode(IEnumerable<int> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);

        // Average GPT-2 token is ~4 bytes; a guess only, the buffer grows as needed.
        int initialCapacity = ids.TryGetNonEnumeratedCount(out int count) ? (int)Math.Clamp(count * 4L, 16, 1 << 20) : 256;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(initialCapacity);
        int length = 0;
        try
        {
            foreach (int id in ids)
            {
                ReadOnlySpan<byte> bytes = TokenBytes(id);
                if (length + bytes.Length > buffer.Length)
                {
                    byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(buffer.Length * 2, length + bytes.Length));
                    buffer.AsSpan(0, length).CopyTo(larger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = larger;
                }

                bytes.CopyTo(buffer.AsSpan(length));
                length += bytes.Length;
            }

            return Utf8WithReplacement.GetString(buffer, 0, length);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>The raw bytes token <paramref name="id"/> stands for (not necessarily valid UTF-8 on its own).</summary>
    public ReadOnlySpan<byte> TokenBytes(int id)
    {
        if (!IsValidId(id))
        {
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Token id {id} is not in the vocabulary.");
        }

        int start = _tokenByteOffsets[id];
        return _tokenBytes.AsSpan(start, _tokenByteOffsets[id + 1] - start);
    }

    public bool IsValidId(int id) => (uint)id < (uint)_isDefinedId.Length && _isDefinedId[id];

    /// <summary>The token's bytes decoded on their own, with U+FFFD for a partial character.</summary>
    public string TokenText(int id) => Utf8WithReplacement.GetString(TokenBytes(id));

    /// <summary>
    /// Unpaired surrogates (possible in .NET strings, e.g. from a JSON "\ud800" escape) would otherwise
    /// be byte-encoded as the invalid UTF-8 of a surrogate; U+FFFD is what UTF-8 encoding makes of them.
    /// </summary>
    private static string ReplaceLoneSurrogates(string text)
    {
        int firstSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
        {
            return text;
        }

        char[] chars = text.ToCharArray();
        for (int i = firstSurrogate; i < chars.Length; i++)
        {
            if (char.IsHighSurrogate(chars[i]) && i + 1 < chars.Length && char.IsLowSurrogate(chars[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(chars[i]))
            {
                chars[i] = '\uFFFD';
            }
        }

        return new string(chars);
    }

    /// <summary>The merge table, checked as Microsoft.ML.Tokenizers checks it: both sides and their
    /// concatenation must be vocabulary tokens.</summary>
    private static ByteLevelBpe BuildBpe(Dictionary<string, int> vocabulary, List<string> merges, string vocabularyPath, string mergesPath)
    {
        var idByByte = new int[256];
        for (int value = 0; value < idByByte.Length; value++)
        {
            idByByte[value] = vocabulary.TryGetValue(ByteLevelAlphabet.ToChar((byte)value).ToString(), out int id) ? id : -1;
        }

        var table = new ByteLevelBpe.MergeTable(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            string merge = merges[rank];
            int space = merge.IndexOf(' ');
            if (space <= 0 || space == merge.Length - 1 || merge.IndexOf(' ', space + 1) >= 0)
            {
                throw new InvalidDataException($"'{mergesPath}' has a malformed merge line '{merge}' (expected two tokens separated by one space).");
            }

            string left = merge[..space];
            string right = merge[(space + 1)..];
            int leftId = RequireToken(left);
            int rightId = RequireToken(right);
            int mergedId = RequireToken(left + right);
            // A pair listed twice takes its later rank, as OpenAI's dict(zip(merges, range(...))) does.
            table.Set(ByteLevelBpe.PairKey(leftId, rightId), ByteLevelBpe.MergeValue(rank, mergedId));

            int RequireToken(string token) => vocabulary.TryGetValue(token, out int id)
                ? id
                : throw new InvalidDataException(
                    $"'{mergesPath}' does not match '{vocabularyPath}': the merge '{merge}' needs token '{token}', which the vocabulary lacks.");
        }

        return new ByteLevelBpe(idByByte, table);
    }

    private static string RequireFile(string directory, string fileName)
    {
        string path = Path.Combine(directory, fileName);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException(
                $"GPT-2 tokenizer file '{fileName}' is missing from '{directory}'.", path);
        }

        return path;
    }

    private static Dictionary<string, int> ReadVocabulary(string path)
    {
        Dictionary<string, int>? vocabulary;
        try
        {
            using FileStream stream = File.OpenRead(path);
            vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(stream);
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{path}' is not a JSON object of token strings to ids.", exception);
        }

        if (vocabulary is null || vocabulary.Count == 0)
        {
            throw new InvalidDataException($"'{path}' holds no tokens.");
        }

        if (vocabulary.Values.Any(id => id < 0))
        {
            throw new InvalidDataException($"'{path}' has a negative token id.");
        }

        return vocabulary;
    }

    private static List<string> ReadMerges(string path)
    {
        var merges = new List<string>();
        foreach (string line in File.ReadLines(path, Encoding.UTF8))
        {
            // The first line of a GPT-2 merges file is a "#version: 0.2" header, not a merge.
            if (line.Length == 0 || (merges.Count == 0 && line.StartsWith("#version", StringComparison.Ordinal)))
            {
                continue;
            }

            merges.Add(line);
        }

        return merges;
    }

    private static string? ReadEndOfTextToken(string directory)
    {
        foreach (string fileName in new[] { TokenizerConfigFileName, SpecialTokensMapFileName })
        {
            string path = Path.Combine(directory, fileName);
            if (!File.Exists(path))
            {
                continue;
            }

            try
            {
                using FileStream stream = File.OpenRead(path);
                using JsonDocument document = JsonDocument.Parse(stream);
                if (document.RootElement.ValueKind == JsonValueKind.Object
                    && document.RootElement.TryGetProperty("eos_token", out JsonElement eos))
                {
                    // Either a plain string or an AddedToken object {"content": ..., ...}.
                    JsonElement content = eos.ValueKind == JsonValueKind.Object && eos.TryGetProperty("content", out JsonElement inner)
                        ? inner
                        : eos;
                    if (content.ValueKind == JsonValueKind.String && !string.IsNullOrEmpty(content.GetString()))
                    {
                        return content.GetString();
                    }
                }
            }
            catch (JsonException exception)
            {
                throw new InvalidDataException($"'{path}' is not valid JSON.", exception);
            }
        }

        return null;
    }

    private static (byte[] Bytes, int[] Offsets, bool[] IsDefined, int DistinctIds) BuildTokenByteTable(
        Dictionary<string, int> vocabulary, Dictionary<string, int> specialTokens)
    {
        int idCount = Math.Max(vocabulary.Values.Max(), specialTokens.Values.Max()) + 1;
        var bytesById = new byte[idCount][];
        foreach ((string token, int id) in vocabulary)
        {
            bytesById[id] = ByteLevelBytes(token);
        }

        // Special tokens are literal text, not byte-level strings.
        foreach ((string token, int id) in specialTokens)
        {
            bytesById[id] = Encoding.UTF8.GetBytes(token);
        }

        var offsets = new int[idCount + 1];
        var isDefined = new bool[idCount];
        int distinctIds = 0;
        for (int id = 0; id < idCount; id++)
        {
            isDefined[id] = bytesById[id] is not null;
            distinctIds += isDefined[id] ? 1 : 0;
            offsets[id + 1] = offsets[id] + (bytesById[id]?.Length ?? 0);
        }

        var bytes = new byte[offsets[idCount]];
        for (int id = 0; id < idCount; id++)
        {
            bytesById[id]?.CopyTo(bytes, offsets[id]);
        }

        return (bytes, offsets, isDefined, distinctIds);
    }

    /// <summary>
    /// Inverts bytes_to_unicode over a vocabulary string. A string with characters outside the
    /// byte alphabet is an added token stored as plain text, so its UTF-8 is used instead.
    /// </summary>
    private static byte[] ByteLevelBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!ByteLevelAlphabet.TryGetByte(token[i], out bytes[i]))
            {
                return Encoding.UTF8.GetBytes(token);
            }
        }

        return bytes;
    }
}
