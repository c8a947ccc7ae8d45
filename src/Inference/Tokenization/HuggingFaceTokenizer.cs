using System.Buffers;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// A BPE tokenizer loaded from a Hugging Face <c>tokenizer.json</c> (+ <c>tokenizer_config.json</c>): byte-level,
/// as Llama 3, Qwen2/2.5/3 and SmolLM2 publish them, or SentencePiece-style with byte fallback, as Llama 2,
/// TinyLlama and Mistral 7B do. Everything that differs between families comes from the
/// files: the vocabulary and merges, the pre-tokenizer's split regex, the NFC normalizer, the added tokens
/// and their <c>special</c> flag, the post-processor's template (Llama 3's &lt;|begin_of_text|&gt;) and
/// <c>clean_up_tokenization_spaces</c>. Instances are immutable and safe to share between threads.
/// </summary>
/// <remarks>
/// Encoding follows Hugging Face tokenizers: added tokens are cut out of the raw text first (leftmost, longest
/// first), the rest is normalized, split by the regex (<see cref="CodePointRegexSplitter"/>), mapped to
/// byte-level symbols and merged. Words up to <see cref="Gpt2Tokenizer.LibraryWordBytes"/> bytes are merged by
/// Microsoft.ML.Tokenizers' <c>BpeTokenizer</c>; longer ones by <see cref="ByteLevelBpe"/>, whose cost stays
/// O(n log n) in the word's length where the library's is quadratic (see <see cref="Gpt2Tokenizer"/>).
/// SentencePiece-style files (a Metaspace pre-tokenizer, or none with Llama 2's Prepend("▁") + Replace(" ", "▁")
/// normalizer) go through <see cref="SentencePieceBpe"/> instead of the split regex and byte-level merges, and
/// decode through their decoder chain (<see cref="SentencePieceDecoder"/>). Each token's bytes are its text with
/// "▁" as a space and &lt;0xNN&gt; as that byte, so streams concatenate them; <see cref="Decode(IEnumerable{int}, bool, bool?)"/>
/// is Hugging Face's decode, which also drops the text's leading space (Strip).
/// Not implemented, and refused at load with the file and feature named: other model types (WordPiece,
/// Unigram), other normalizers, pre-tokenizers and decoders, added tokens with lstrip/rstrip/single_word.
/// Added tokens marked <c>normalized</c> are matched in the raw text like the others (tokenizers matches them
/// after normalization; the same for NFC-stable token text).
/// </remarks>
public sealed class HuggingFaceTokenizer : ITokenizer
{
    public const string TokenizerFileName = "tokenizer.json";
    private const string TokenizerConfigFileName = "tokenizer_config.json";
    private const string GenerationConfigFileName = "generation_config.json";

    private const int CancellationCheckInterval = 256;

    private static readonly UTF8Encoding Utf8WithReplacement =
        new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    // Hugging Face's clean_up_tokenization, in its order.
    private static readonly (string From, string To)[] CleanUpReplacements =
    [
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"),
        (" n't", "n't"), (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ];

    private readonly Dictionary<string, int> _vocabulary;
    private readonly BpeTokenizer? _libraryBpe;
    private readonly SentencePieceBpe? _sentencePiece;
    private readonly SentencePieceDecoder? _sentencePieceDecoder;
    private readonly string[]? _tokenStrings;
    private readonly ByteLevelBpe _bpe;
    private readonly bool _ignoreMerges;
    private readonly bool _normalizeNfc;
    private readonly CodePointRegexSplitter? _splitter;
    private readonly AddedTokenMatcher _allAddedTokens;
    private readonly AddedTokenMatcher _nonSpecialAddedTokens;
    private readonly AddedTokenMatcher? _allNormalizedAddedTokens;
    private readonly AddedTokenMatcher? _nonSpecialNormalizedAddedTokens;
    private readonly int[] _prefixIds;
    private readonly int[] _suffixIds;
    private readonly bool _cleanUpTokenizationSpaces;

    private readonly byte[] _tokenBytes;
    private readonly int[] _tokenByteOffsets;
    private readonly bool[] _isDefinedId;
    private readonly bool[] _isSpecialId;

    private HuggingFaceTokenizer(
        Dictionary<string, int> vocabulary,
        BpeTokenizer? libraryBpe,
        (SentencePieceBpe Encoder, SentencePieceDecoder Decoder)? sentencePiece,
        ByteLevelBpe bpe,
        bool ignoreMerges,
        bool normalizeNfc,
        CodePointRegexSplitter? splitter,
        IReadOnlyList<AddedToken> addedTokens,
        int[] prefixIds,
        int[] suffixIds,
        bool cleanUpTokenizationSpaces,
        string endOfTextToken,
        int endOfTextId,
        int? beginningOfTextId,
        IReadOnlyList<int> generationEndIds)
    {
        _vocabulary = vocabulary;
        _libraryBpe = libraryBpe;
        _sentencePiece = sentencePiece?.Encoder;
        _sentencePieceDecoder = sentencePiece?.Decoder;
        _bpe = bpe;
        _ignoreMerges = ignoreMerges;
        _normalizeNfc = normalizeNfc;
        _splitter = splitter;
        if (_sentencePiece is not null && addedTokens.Any(token => token.Normalized))
        {
            // As tokenizers: normalized tokens are looked for in each normalized stretch between the others, as
            // their content normalized (Llama 2's "<s>" is then "▁<s>").
            var raw = addedTokens.Where(token => !token.Normalized).ToList();
            var normalized = addedTokens.Where(token => token.Normalized)
                .Select(token => token with { Content = _sentencePiece.Normalize(token.Content) })
                .Where(token => token.Content.Length > 0)
                .ToList();
            _allAddedTokens = new AddedTokenMatcher(raw);
            _nonSpecialAddedTokens = new AddedTokenMatcher(raw.Where(token => !token.Special));
            _allNormalizedAddedTokens = new AddedTokenMatcher(normalized);
            _nonSpecialNormalizedAddedTokens = new AddedTokenMatcher(normalized.Where(token => !token.Special));
        }
        else
        {
            _allAddedTokens = new AddedTokenMatcher(addedTokens);
            _nonSpecialAddedTokens = new AddedTokenMatcher(addedTokens.Where(token => !token.Special));
        }

        _prefixIds = prefixIds;
        _suffixIds = suffixIds;
        _cleanUpTokenizationSpaces = cleanUpTokenizationSpaces;
        EndOfTextToken = endOfTextToken;
        EndOfTextId = endOfTextId;
        BeginningOfTextId = beginningOfTextId;
        AddedTokens = addedTokens;
        EndOfSequenceIds = generationEndIds.Prepend(endOfTextId).Distinct().ToArray();

        int idCount = Math.Max(vocabulary.Values.Max(), addedTokens.Count == 0 ? 0 : addedTokens.Max(token => token.Id)) + 1;
        var bytesById = new byte[idCount][];
        foreach ((string token, int id) in vocabulary)
        {
            bytesById[id] = _sentencePieceDecoder?.TokenBytes(token) ?? ByteLevelBytes(token);
        }

        if (_sentencePieceDecoder is not null)
        {
            // Hugging Face's decode runs the decoder over token strings, so keep them.
            _tokenStrings = new string[idCount];
            foreach ((string token, int id) in vocabulary)
            {
                _tokenStrings[id] = token;
            }

            foreach (AddedToken token in addedTokens)
            {
                _tokenStrings[token.Id] = token.Content;
            }
        }

        _isSpecialId = new bool[idCount];
        foreach (AddedToken token in addedTokens)
        {
            // Added tokens are literal text, not byte-level strings.
            bytesById[token.Id] = Encoding.UTF8.GetBytes(token.Content);
            _isSpecialId[token.Id] = token.Special;
        }

        _tokenByteOffsets = new int[idCount + 1];
        _isDefinedId = new bool[idCount];
        int longest = 1;
        for (int id = 0; id < idCount; id++)
        {
            _isDefinedId[id] = bytesById[id] is not null;
            VocabSize += _isDefinedId[id] ? 1 : 0;
            int length = bytesById[id]?.Length ?? 0;
            longest = Math.Max(longest, length);
            _tokenByteOffsets[id + 1] = _tokenByteOffsets[id] + length;
        }

        if (_tokenStrings is not null)
        {
            // A SentencePiece token covers its string in the text too: a literal "▁" there is 3 bytes, not a space's 1.
            longest = Math.Max(longest, _tokenStrings.Max(token => token is null ? 0 : Encoding.UTF8.GetByteCount(token)));
        }

        MaxTokenByteLength = longest;
        _tokenBytes = new byte[_tokenByteOffsets[idCount]];
        for (int id = 0; id < idCount; id++)
        {
            bytesById[id]?.CopyTo(_tokenBytes, _tokenByteOffsets[id]);
        }
    }

    /// <summary>One entry of tokenizer.json's <c>added_tokens</c>.</summary>
    /// <param name="Normalized">Matched in the normalized text, by its normalized content (tokenizers' split_normalized_trie);
    /// only SentencePiece-style files, whose normalizer changes text, treat it apart.</param>
    public sealed record AddedToken(int Id, string Content, bool Special, bool Normalized = false);

    public int VocabSize { get; }

    public int EndOfTextId { get; }

    public string EndOfTextToken { get; }

    /// <summary><see cref="EndOfTextId"/> then every id of generation_config.json's <c>eos_token_id</c>.</summary>
    public IReadOnlyList<int> EndOfSequenceIds { get; }

    /// <summary>tokenizer_config.json's <c>bos_token</c>, when it names a token.</summary>
    public int? BeginningOfTextId { get; }

    public int MaxTokenByteLength { get; }

    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>The ids encoding with special tokens puts before the text (Llama 3: &lt;|begin_of_text|&gt;).</summary>
    public IReadOnlyList<int> PrefixIds => _prefixIds;

    /// <summary>Whether <paramref name="directory"/> holds a tokenizer.json.</summary>
    public static bool Exists(string directory) => File.Exists(Path.Combine(directory, TokenizerFileName));

    /// <exception cref="InvalidDataException">A file is malformed or uses a feature this tokenizer does not
    /// implement; the message names the file and the feature.</exception>
    public static HuggingFaceTokenizer Load(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        string path = Path.Combine(directory, TokenizerFileName);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"Tokenizer file '{TokenizerFileName}' is missing from '{directory}'.", path);
        }

        using JsonDocument document = ParseJson(path);
        JsonElement root = document.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out JsonElement model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"'{path}' has no \"model\" object.");
        }

        string modelType = model.TryGetProperty("type", out JsonElement typeElement) ? typeElement.GetString() ?? "" : "BPE";
        if (modelType != "BPE")
        {
            throw new InvalidDataException($"'{path}': tokenizer model type '{modelType}' is not supported (only BPE).");
        }

        RequireEmpty(model, "continuing_subword_prefix", path);
        RequireEmpty(model, "end_of_word_suffix", path);
        bool ignoreMerges = model.TryGetProperty("ignore_merges", out JsonElement ignore) && ignore.ValueKind == JsonValueKind.True;

        Dictionary<string, int> vocabulary = ReadVocabulary(model, path);
        List<string> merges = ReadMerges(model, path);
        List<SentencePieceBpe.NormalizerStep> normalizer = ReadNormalizer(root, path);
        bool sentencePieceStyle = IsSentencePieceStyle(root, normalizer);
        bool normalizeNfc = normalizer.Any(step => step is SentencePieceBpe.Nfc);
        string? pattern = null;
        if (!sentencePieceStyle)
        {
            RequireFalse(model, "byte_fallback", path);
            pattern = ReadSplitPattern(root, path);
        }

        List<AddedToken> addedTokens = ReadAddedTokens(root, path);
        var addedIdByContent = addedTokens.ToDictionary(token => token.Content, token => token.Id, StringComparer.Ordinal);
        (int[] prefixIds, int[] suffixIds, bool hasTemplate) = ReadPostProcessor(root, path, addedIdByContent, vocabulary);
        SentencePieceDecoder? sentencePieceDecoder = ReadDecoder(root, path, sentencePieceStyle);

        TokenizerConfig config = ReadConfig(directory);
        int TokenId(string token) =>
            addedIdByContent.TryGetValue(token, out int id) ? id
            : vocabulary.TryGetValue(token, out id) ? id
            : throw new InvalidDataException($"'{Path.Combine(directory, TokenizerConfigFileName)}' names token '{token}', which '{path}' lacks.");

        string endOfText = config.EosToken ?? addedTokens.FirstOrDefault(token => token.Special)?.Content
            ?? throw new InvalidDataException($"'{directory}' names no eos_token and '{path}' has no special token.");
        int endOfTextId = TokenId(endOfText);
        int? beginningOfTextId = config.BosToken is null ? null : TokenId(config.BosToken);
        if (!hasTemplate)
        {
            // Without a TemplateProcessing post-processor, transformers adds bos/eos per tokenizer_config.json's flags.
            if (config.AddBosToken && beginningOfTextId is int bos)
            {
                prefixIds = [bos];
            }

            if (config.AddEosToken)
            {
                suffixIds = [endOfTextId];
            }
        }

        ByteLevelBpe bpe = BuildBpe(vocabulary, merges, path);
        if (sentencePieceStyle)
        {
            var encoder = new SentencePieceBpe(
                vocabulary,
                bpe,
                model.TryGetProperty("byte_fallback", out JsonElement fallback) && fallback.ValueKind == JsonValueKind.True,
                ReadUnknownId(model, vocabulary, path),
                model.TryGetProperty("fuse_unk", out JsonElement fuse) && fuse.ValueKind == JsonValueKind.True,
                ignoreMerges,
                normalizer,
                ReadMetaspace(root, path));
            return new HuggingFaceTokenizer(
                vocabulary, null, (encoder, sentencePieceDecoder!), bpe, ignoreMerges, normalizeNfc, null, addedTokens, prefixIds, suffixIds,
                config.CleanUpTokenizationSpaces, endOfText, endOfTextId, beginningOfTextId, ReadGenerationEndIds(directory));
        }

        if (normalizer.Any(step => step is not SentencePieceBpe.Nfc))
        {
            throw new InvalidDataException($"'{path}': normalizer '{normalizer.First(step => step is not SentencePieceBpe.Nfc).GetType().Name}' is not supported with a byte-level pre-tokenizer (only NFC).");
        }

        var splitter = new CodePointRegexSplitter(pattern!);
        BpeTokenizer libraryBpe = BpeTokenizer.Create(new BpeOptions(vocabulary) { Merges = merges, ByteLevel = true });
        return new HuggingFaceTokenizer(
            vocabulary, libraryBpe, null, bpe, ignoreMerges, normalizeNfc, splitter, addedTokens, prefixIds, suffixIds,
            config.CleanUpTokenizationSpaces, endOfText, endOfTextId, beginningOfTextId, ReadGenerationEndIds(directory));
    }

    public IReadOnlyList<int> Encode(string text) => Encode(text, addSpecialTokens: false, int.MaxValue, CancellationToken.None);

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens) =>
        Encode(text, addSpecialTokens, int.MaxValue, CancellationToken.None);

    public IReadOnlyList<int> Encode(string text, int maxTokens, CancellationToken cancellationToken) =>
        Encode(text, addSpecialTokens: false, maxTokens, cancellationToken);

    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens, int maxTokens, CancellationToken cancellationToken) =>
        Encode(text, addSpecialTokens, splitSpecialTokens: false, maxTokens, cancellationToken);

    /// <summary>
    /// Encodes <paramref name="text"/>. With <paramref name="splitSpecialTokens"/> (Hugging Face's
    /// <c>split_special_tokens=True</c>) the text of tokens marked special is encoded as ordinary text, so a
    /// user cannot write a control token into a prompt; non-special added tokens (Qwen3's &lt;think&gt;) are
    /// still matched.
    /// </summary>
    public IReadOnlyList<int> Encode(string text, bool addSpecialTokens, bool splitSpecialTokens, int maxTokens, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        cancellationToken.ThrowIfCancellationRequested();
        text = ReplaceLoneSurrogates(text);
        var ids = new List<int>();
        if (addSpecialTokens)
        {
            ids.AddRange(_prefixIds);
        }

        AddedTokenMatcher matcher = splitSpecialTokens ? _nonSpecialAddedTokens : _allAddedTokens;
        var workspace = new ByteLevelBpe.Workspace();
        var pieces = new List<(int Start, int Length)>();
        byte[] wordBytes = new byte[256];
        int words = 0;
        int position = 0;
        while (position <= text.Length)
        {
            (int matchStart, int matchLength, int matchId) = matcher.FindNext(text, position);
            int segmentEnd = matchStart < 0 ? text.Length : matchStart;
            string segment = text[position..segmentEnd];
            if (_sentencePiece is not null)
            {
                cancellationToken.ThrowIfCancellationRequested();
                EncodeSentencePieceSegment(
                    segment,
                    atTextStart: position == 0,
                    splitSpecialTokens ? _nonSpecialNormalizedAddedTokens : _allNormalizedAddedTokens,
                    ids,
                    workspace,
                    cancellationToken);
                if (ids.Count > maxTokens)
                {
                    return ids;
                }
            }
            else if (_normalizeNfc && !segment.IsNormalized(NormalizationForm.FormC))
            {
                segment = segment.Normalize(NormalizationForm.FormC);
            }

            if (_sentencePiece is null)
            {
                pieces.Clear();
                _splitter!.Split(segment, pieces);
                foreach ((int start, int length) in pieces)
                {
                    if (++words == CancellationCheckInterval)
                    {
                        words = 0;
                        cancellationToken.ThrowIfCancellationRequested();
                    }

                    EncodeWord(segment.AsSpan(start, length), ids, workspace, ref wordBytes, cancellationToken);
                    if (ids.Count > maxTokens)
                    {
                        return ids;
                    }
                }
            }

            if (matchStart < 0)
            {
                break;
            }

            ids.Add(matchId);
            if (ids.Count > maxTokens)
            {
                return ids;
            }

            position = matchStart + matchLength;
        }

        if (addSpecialTokens)
        {
            ids.AddRange(_suffixIds);
        }

        return ids;
    }

    /// <summary>
    /// SentencePiece-style: the stretch between two added tokens is normalized, cut at the normalized added tokens
    /// found in it, and each piece is pre-tokenized and merged as a unit.
    /// </summary>
    private void EncodeSentencePieceSegment(
        string segment, bool atTextStart, AddedTokenMatcher? normalizedTokens, List<int> ids, ByteLevelBpe.Workspace workspace, CancellationToken cancellationToken)
    {
        if (segment.Length == 0)
        {
            return;
        }

        string normalized = _sentencePiece!.Normalize(segment);
        int position = 0;
        while (position < normalized.Length)
        {
            (int matchStart, int matchLength, int matchId) = normalizedTokens?.FindNext(normalized, position) ?? (-1, 0, 0);
            int end = matchStart < 0 ? normalized.Length : matchStart;
            // Only a piece that starts the input is at its start (what Metaspace's "first" scheme asks).
            _sentencePiece.EncodeNormalized(normalized[position..end], atTextStart && position == 0, ids, workspace, cancellationToken);
            if (matchStart < 0)
            {
                break;
            }

            ids.Add(matchId);
            position = matchStart + matchLength;
        }
    }

    private void EncodeWord(ReadOnlySpan<char> chars, List<int> ids, ByteLevelBpe.Workspace workspace, ref byte[] wordBytes, CancellationToken cancellationToken)
    {
        int maxBytes = Encoding.UTF8.GetMaxByteCount(chars.Length);
        if (wordBytes.Length < maxBytes)
        {
            wordBytes = new byte[Math.Max(maxBytes, 2 * wordBytes.Length)];
        }

        int byteCount = Encoding.UTF8.GetBytes(chars, wordBytes);
        if (_ignoreMerges && byteCount <= MaxTokenByteLength)
        {
            // ignore_merges: a word that is itself a vocabulary entry is that entry, whatever the merges would make of it.
            Span<char> symbols = stackalloc char[byteCount];
            for (int i = 0; i < byteCount; i++)
            {
                symbols[i] = ByteLevelAlphabet.ToChar(wordBytes[i]);
            }

            if (_vocabulary.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(symbols, out int whole))
            {
                ids.Add(whole);
                return;
            }
        }

        if (byteCount <= Gpt2Tokenizer.LibraryWordBytes)
        {
            ids.AddRange(_libraryBpe!.EncodeToIds(chars, considerPreTokenization: false, considerNormalization: false));
            return;
        }

        _bpe.EncodeWord(wordBytes.AsSpan(0, byteCount), ids, workspace, cancellationToken);
    }

    public long MinTokenCount(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (_sentencePiece is { FusesUnknownRuns: true })
        {
            // A run of characters the vocabulary lacks (and cannot byte-fall-back) is one unk, however long.
            return text.Length == 0 ? 0 : 1;
        }

        long bytes = Encoding.UTF8.GetByteCount(text);
        return (bytes + MaxTokenByteLength - 1) / MaxTokenByteLength;
    }

    /// <summary>
    /// The plain inverse of encoding: every token's bytes (special ones included), decoded as UTF-8, with no
    /// clean-up, so that it equals what <see cref="IncrementalDetokenizer"/> streams (and what vLLM streams:
    /// its incremental detokenizer applies no clean-up either). For a byte-level file this is
    /// <see cref="Decode(IEnumerable{int}, bool, bool?)"/> without clean-up; for a SentencePiece-style one it keeps
    /// the leading space of a first "▁" token, as a stream after the prompt's BOS shows it (Hugging Face's decode
    /// strips it).
    /// </summary>
    public string Decode(IEnumerable<int> ids) => ConcatenateTokenBytes(ids, skipSpecialTokens: false);

    /// <summary>
    /// Decodes as Hugging Face's <c>decode</c> does: byte-level tokens back to UTF-8 (U+FFFD for malformed
    /// sequences), or a SentencePiece-style file's decoder chain over the token strings; added tokens as their
    /// text or skipped when special and <paramref name="skipSpecialTokens"/>; then tokenizer_config.json's
    /// <c>clean_up_tokenization_spaces</c> unless <paramref name="cleanUpTokenizationSpaces"/> says otherwise.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens, bool? cleanUpTokenizationSpaces = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        string text;
        if (_sentencePieceDecoder is not null)
        {
            var tokens = new List<string>();
            foreach (int id in ids)
            {
                if (!IsValidId(id))
                {
                    throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is not in the vocabulary.");
                }

                if (!(skipSpecialTokens && _isSpecialId[id]))
                {
                    tokens.Add(_tokenStrings![id]);
                }
            }

            text = _sentencePieceDecoder.Decode(tokens);
        }
        else
        {
            text = ConcatenateTokenBytes(ids, skipSpecialTokens);
        }

        return cleanUpTokenizationSpaces ?? _cleanUpTokenizationSpaces ? CleanUpTokenization(text) : text;
    }

    private string ConcatenateTokenBytes(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int initialCapacity = ids.TryGetNonEnumeratedCount(out int count) ? (int)Math.Clamp(count * 4L, 16, 1 << 20) : 256;
        byte[] buffer = ArrayPool<byte>.Shared.Rent(initialCapacity);
        int length = 0;
        try
        {
            foreach (int id in ids)
            {
                ReadOnlySpan<byte> bytes = TokenBytes(id);
                if (skipSpecialTokens && _isSpecialId[id])
                {
                    continue;
                }

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

    /// <summary>Hugging Face's <c>clean_up_tokenization</c>: removes the space before punctuation and English contractions.</summary>
    public static string CleanUpTokenization(string text)
    {
        foreach ((string from, string to) in CleanUpReplacements)
        {
            text = text.Replace(from, to, StringComparison.Ordinal);
        }

        return text;
    }

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

    public bool IsSpecialId(int id) => IsValidId(id) && _isSpecialId[id];

    public string TokenText(int id) => Utf8WithReplacement.GetString(TokenBytes(id));

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

    private static ByteLevelBpe BuildBpe(Dictionary<string, int> vocabulary, List<string> merges, string path)
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
            string left = merge[..space];
            string right = merge[(space + 1)..];
            int leftId = RequireToken(left);
            int rightId = RequireToken(right);
            int mergedId = RequireToken(left + right);
            table.Set(ByteLevelBpe.PairKey(leftId, rightId), ByteLevelBpe.MergeValue(rank, mergedId));

            int RequireToken(string token) => vocabulary.TryGetValue(token, out int id)
                ? id
                : throw new InvalidDataException($"'{path}': the merge '{merge}' needs token '{token}', which model.vocab lacks.");
        }

        return new ByteLevelBpe(idByByte, table);
    }

    private static JsonDocument ParseJson(string path)
    {
        try
        {
            using FileStream stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, new JsonDocumentOptions { MaxDepth = 256 });
        }
        catch (JsonException exception)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {exception.Message}", exception);
        }
    }

    private static void RequireFalse(JsonElement element, string name, string path)
    {
        if (element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.True)
        {
            throw new InvalidDataException($"'{path}': model.{name} = true is not supported.");
        }
    }

    private static void RequireEmpty(JsonElement element, string name, string path)
    {
        if (element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String && value.GetString()!.Length > 0)
        {
            throw new InvalidDataException($"'{path}': model.{name} '{value.GetString()}' is not supported.");
        }
    }

    private static Dictionary<string, int> ReadVocabulary(JsonElement model, string path)
    {
        if (!model.TryGetProperty("vocab", out JsonElement vocab) || vocab.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"'{path}' has no model.vocab object.");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (JsonProperty entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0)
            {
                throw new InvalidDataException($"'{path}': model.vocab entry '{entry.Name}' has no non-negative integer id.");
            }

            vocabulary[entry.Name] = id;
        }

        if (vocabulary.Count == 0)
        {
            throw new InvalidDataException($"'{path}': model.vocab is empty.");
        }

        return vocabulary;
    }

    /// <summary>model.merges as "left right" strings: older files write them so, newer ones as [left, right] pairs.</summary>
    private static List<string> ReadMerges(JsonElement model, string path)
    {
        var merges = new List<string>();
        if (!model.TryGetProperty("merges", out JsonElement array) || array.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"'{path}' has no model.merges array.");
        }

        foreach (JsonElement merge in array.EnumerateArray())
        {
            string? left = null, right = null;
            if (merge.ValueKind == JsonValueKind.String)
            {
                string text = merge.GetString()!;
                int space = text.IndexOf(' ');
                if (space > 0 && space < text.Length - 1 && text.IndexOf(' ', space + 1) < 0)
                {
                    left = text[..space];
                    right = text[(space + 1)..];
                }
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                left = merge[0].GetString();
                right = merge[1].GetString();
            }

            // Byte-level tokens never hold a space (it is 'Ġ'), so "left right" is unambiguous.
            if (string.IsNullOrEmpty(left) || string.IsNullOrEmpty(right) || left.Contains(' ') || right.Contains(' '))
            {
                throw new InvalidDataException($"'{path}': model.merges entry {merges.Count} ({merge.GetRawText()}) is not a pair of tokens.");
            }

            merges.Add(left + " " + right);
        }

        return merges;
    }

    /// <summary>The normalizer's steps: NFC (Qwen), Llama 2's Prepend + Replace, or none; anything else is refused by name.</summary>
    private static List<SentencePieceBpe.NormalizerStep> ReadNormalizer(JsonElement root, string path)
    {
        var steps = new List<SentencePieceBpe.NormalizerStep>();
        if (!root.TryGetProperty("normalizer", out JsonElement normalizer) || normalizer.ValueKind == JsonValueKind.Null)
        {
            return steps;
        }

        var items = TypeOf(normalizer) == "Sequence" && normalizer.TryGetProperty("normalizers", out JsonElement list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList()
            : [normalizer];
        foreach (JsonElement item in items)
        {
            string type = TypeOf(item);
            steps.Add(type switch
            {
                "NFC" => new SentencePieceBpe.Nfc(),
                "Prepend" when item.TryGetProperty("prepend", out JsonElement prepend) && prepend.ValueKind == JsonValueKind.String =>
                    new SentencePieceBpe.Prepend(prepend.GetString()!),
                "Replace" => new SentencePieceBpe.Replace(LiteralPattern(item, "normalizer", path), item.GetProperty("content").GetString() ?? ""),
                _ => throw new InvalidDataException($"'{path}': normalizer '{type}' is not supported (NFC, Prepend, Replace)."),
            });
        }

        return steps;
    }

    /// <summary>A Replace step's pattern, which must be a literal string (a regex pattern is refused).</summary>
    private static string LiteralPattern(JsonElement step, string kind, string path) =>
        step.TryGetProperty("pattern", out JsonElement pattern) && pattern.ValueKind == JsonValueKind.Object
            && pattern.TryGetProperty("String", out JsonElement literal) && literal.ValueKind == JsonValueKind.String && literal.GetString()!.Length > 0
            ? literal.GetString()!
            : throw new InvalidDataException($"'{path}': a Replace {kind} with pattern {(step.TryGetProperty("pattern", out JsonElement p) ? p.GetRawText() : "(none)")} is not supported (only a literal String).");

    /// <summary>
    /// SentencePiece-style: a Metaspace pre-tokenizer (Mistral v0.3, files converted with legacy=False), or no
    /// pre-tokenizer with a normalizer that does the "▁" work (Llama 2, TinyLlama, Mistral v0.1).
    /// </summary>
    private static bool IsSentencePieceStyle(JsonElement root, List<SentencePieceBpe.NormalizerStep> normalizer)
    {
        bool hasPreTokenizer = root.TryGetProperty("pre_tokenizer", out JsonElement preTokenizer) && preTokenizer.ValueKind != JsonValueKind.Null;
        return hasPreTokenizer
            ? TypeOf(preTokenizer) == "Metaspace"
            : normalizer.Any(step => step is SentencePieceBpe.Prepend or SentencePieceBpe.Replace);
    }

    /// <summary>The Metaspace pre-tokenizer's options; null when the file has no pre-tokenizer.</summary>
    private static SentencePieceBpe.MetaspaceOptions? ReadMetaspace(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out JsonElement step) || step.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        char replacement = ReadReplacement(step, "pre-tokenizer", path);
        SentencePieceBpe.PrependScheme scheme = ReadPrependScheme(step, "pre-tokenizer", path);
        // tokenizers' default for a file without the key (written before it existed) is to split.
        bool split = !step.TryGetProperty("split", out JsonElement splitElement) || splitElement.ValueKind != JsonValueKind.False;
        return new SentencePieceBpe.MetaspaceOptions(replacement, scheme, split);
    }

    private static char ReadReplacement(JsonElement step, string kind, string path)
    {
        string replacement = step.TryGetProperty("replacement", out JsonElement value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()!
            : SentencePieceBpe.SpaceSymbol.ToString();
        return replacement.Length == 1
            ? replacement[0]
            : throw new InvalidDataException($"'{path}': Metaspace {kind} replacement '{replacement}' is not one character.");
    }

    /// <summary>prepend_scheme, or for older files add_prefix_space (true: always, false: never).</summary>
    private static SentencePieceBpe.PrependScheme ReadPrependScheme(JsonElement step, string kind, string path)
    {
        if (step.TryGetProperty("prepend_scheme", out JsonElement scheme) && scheme.ValueKind == JsonValueKind.String)
        {
            return scheme.GetString() switch
            {
                "always" => SentencePieceBpe.PrependScheme.Always,
                "first" => SentencePieceBpe.PrependScheme.First,
                "never" => SentencePieceBpe.PrependScheme.Never,
                var other => throw new InvalidDataException($"'{path}': Metaspace {kind} prepend_scheme '{other}' is not supported (always, first, never)."),
            };
        }

        return step.TryGetProperty("add_prefix_space", out JsonElement add) && add.ValueKind == JsonValueKind.False
            ? SentencePieceBpe.PrependScheme.Never
            : SentencePieceBpe.PrependScheme.Always;
    }

    /// <summary>model.unk_token's id, or -1 when the file names none.</summary>
    private static int ReadUnknownId(JsonElement model, Dictionary<string, int> vocabulary, string path)
    {
        if (!model.TryGetProperty("unk_token", out JsonElement unk) || unk.ValueKind != JsonValueKind.String)
        {
            return -1;
        }

        return vocabulary.TryGetValue(unk.GetString()!, out int id)
            ? id
            : throw new InvalidDataException($"'{path}': model.unk_token '{unk.GetString()}' is not in model.vocab.");
    }

    /// <summary>
    /// The split regex: a Sequence of Split (Isolated) then ByteLevel without its own regex (Llama 3, Qwen2/3),
    /// or a lone ByteLevel with use_regex (GPT-2's pattern, as tokenizers' ByteLevel applies it).
    /// </summary>
    private static string ReadSplitPattern(JsonElement root, string path)
    {
        if (!root.TryGetProperty("pre_tokenizer", out JsonElement preTokenizer) || preTokenizer.ValueKind == JsonValueKind.Null)
        {
            throw new InvalidDataException($"'{path}' has no pre_tokenizer; a byte-level BPE tokenizer needs ByteLevel.");
        }

        var steps = TypeOf(preTokenizer) == "Sequence" && preTokenizer.TryGetProperty("pretokenizers", out JsonElement list)
            ? list.EnumerateArray().ToList()
            : [preTokenizer];
        string? pattern = null;
        bool byteLevel = false;
        foreach (JsonElement step in steps)
        {
            string type = TypeOf(step);
            if (type == "Split" && pattern is null && !byteLevel)
            {
                string behavior = step.TryGetProperty("behavior", out JsonElement b) ? b.GetString() ?? "" : "";
                bool invert = step.TryGetProperty("invert", out JsonElement i) && i.ValueKind == JsonValueKind.True;
                if (behavior != "Isolated" || invert)
                {
                    throw new InvalidDataException($"'{path}': Split pre-tokenizer with behavior '{behavior}'{(invert ? " inverted" : "")} is not supported (only Isolated).");
                }

                JsonElement patternElement = step.GetProperty("pattern");
                pattern = patternElement.TryGetProperty("Regex", out JsonElement regex) ? regex.GetString()
                    : patternElement.TryGetProperty("String", out JsonElement literal) ? System.Text.RegularExpressions.Regex.Escape(literal.GetString() ?? "")
                    : null;
                if (string.IsNullOrEmpty(pattern))
                {
                    throw new InvalidDataException($"'{path}': the Split pre-tokenizer has no pattern.");
                }
            }
            else if (type == "ByteLevel" && !byteLevel)
            {
                byteLevel = true;
                if (step.TryGetProperty("add_prefix_space", out JsonElement prefix) && prefix.ValueKind == JsonValueKind.True)
                {
                    throw new InvalidDataException($"'{path}': ByteLevel pre-tokenizer with add_prefix_space = true is not supported.");
                }

                bool useRegex = !step.TryGetProperty("use_regex", out JsonElement useRegexElement) || useRegexElement.ValueKind != JsonValueKind.False;
                if (useRegex)
                {
                    if (pattern is not null)
                    {
                        throw new InvalidDataException($"'{path}': a Split pre-tokenizer followed by ByteLevel with use_regex = true is not supported.");
                    }

                    pattern = Gpt2SplitPattern.OpenAiPattern;
                }
            }
            else
            {
                throw new InvalidDataException($"'{path}': pre-tokenizer '{type}' is not supported here (Split then ByteLevel, or ByteLevel).");
            }
        }

        if (!byteLevel || pattern is null)
        {
            throw new InvalidDataException($"'{path}': the pre-tokenizer is not byte-level (no ByteLevel step), which this tokenizer requires.");
        }

        return pattern;
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root, string path)
    {
        var tokens = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out JsonElement list) || list.ValueKind != JsonValueKind.Array)
        {
            return tokens;
        }

        foreach (JsonElement entry in list.EnumerateArray())
        {
            int id = entry.GetProperty("id").GetInt32();
            string content = entry.GetProperty("content").GetString() ?? "";
            bool special = entry.TryGetProperty("special", out JsonElement s) && s.ValueKind == JsonValueKind.True;
            bool normalized = entry.TryGetProperty("normalized", out JsonElement n) && n.ValueKind == JsonValueKind.True;
            foreach (string flag in new[] { "lstrip", "rstrip", "single_word" })
            {
                if (entry.TryGetProperty(flag, out JsonElement value) && value.ValueKind == JsonValueKind.True)
                {
                    throw new InvalidDataException($"'{path}': added token '{content}' sets {flag}, which is not supported.");
                }
            }

            if (content.Length > 0)
            {
                tokens.Add(new AddedToken(id, content, special, normalized));
            }
        }

        return tokens;
    }

    /// <summary>The ids a TemplateProcessing post-processor puts around a single sequence; ByteLevel and
    /// a missing post-processor add none.</summary>
    private static (int[] Prefix, int[] Suffix, bool HasTemplate) ReadPostProcessor(
        JsonElement root, string path, Dictionary<string, int> addedIds, Dictionary<string, int> vocabulary)
    {
        if (!root.TryGetProperty("post_processor", out JsonElement processor) || processor.ValueKind == JsonValueKind.Null)
        {
            return ([], [], false);
        }

        var processors = TypeOf(processor) == "Sequence" && processor.TryGetProperty("processors", out JsonElement list)
            ? list.EnumerateArray().ToList()
            : [processor];
        foreach (JsonElement step in processors)
        {
            string type = TypeOf(step);
            if (type == "ByteLevel")
            {
                continue;
            }

            if (type != "TemplateProcessing")
            {
                throw new InvalidDataException($"'{path}': post-processor '{type}' is not supported (ByteLevel, TemplateProcessing).");
            }

            var prefix = new List<int>();
            var suffix = new List<int>();
            bool seenSequence = false;
            foreach (JsonElement piece in step.GetProperty("single").EnumerateArray())
            {
                if (piece.TryGetProperty("Sequence", out _))
                {
                    seenSequence = true;
                    continue;
                }

                string token = piece.GetProperty("SpecialToken").GetProperty("id").GetString() ?? "";
                int[] ids = step.TryGetProperty("special_tokens", out JsonElement specials) && specials.TryGetProperty(token, out JsonElement special)
                    ? special.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray()
                    : addedIds.TryGetValue(token, out int addedId) ? [addedId]
                    : vocabulary.TryGetValue(token, out int vocabId) ? [vocabId]
                    : throw new InvalidDataException($"'{path}': the post-processor's template names unknown token '{token}'.");
                (seenSequence ? suffix : prefix).AddRange(ids);
            }

            return (prefix.ToArray(), suffix.ToArray(), true);
        }

        return ([], [], false);
    }

    /// <summary>
    /// Byte-level files: a ByteLevel decoder (or none). SentencePiece-style files: a Sequence of Replace,
    /// ByteFallback, Fuse, Strip and Metaspace steps, or one of them; returned for decoding.
    /// </summary>
    private static SentencePieceDecoder? ReadDecoder(JsonElement root, string path, bool sentencePieceStyle)
    {
        bool hasDecoder = root.TryGetProperty("decoder", out JsonElement decoder) && decoder.ValueKind != JsonValueKind.Null;
        if (!sentencePieceStyle)
        {
            if (hasDecoder && TypeOf(decoder) != "ByteLevel")
            {
                throw new InvalidDataException($"'{path}': decoder '{TypeOf(decoder)}' is not supported with a byte-level pre-tokenizer (only ByteLevel).");
            }

            return null;
        }

        if (!hasDecoder)
        {
            throw new InvalidDataException($"'{path}' has no decoder; a SentencePiece-style tokenizer needs one (Replace, ByteFallback, Fuse, Strip or Metaspace).");
        }

        var items = TypeOf(decoder) == "Sequence" && decoder.TryGetProperty("decoders", out JsonElement list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().ToList()
            : [decoder];
        var steps = new List<SentencePieceDecoder.Step>();
        foreach (JsonElement item in items)
        {
            string type = TypeOf(item);
            steps.Add(type switch
            {
                "Replace" => new SentencePieceDecoder.Replace(LiteralPattern(item, "decoder", path), item.GetProperty("content").GetString() ?? ""),
                "ByteFallback" => new SentencePieceDecoder.ByteFallback(),
                "Fuse" => new SentencePieceDecoder.Fuse(),
                "Strip" => new SentencePieceDecoder.Strip(StripContent(item, path), Count(item, "start"), Count(item, "stop")),
                "Metaspace" => new SentencePieceDecoder.Metaspace(
                    ReadReplacement(item, "decoder", path),
                    ReadPrependScheme(item, "decoder", path) != SentencePieceBpe.PrependScheme.Never),
                _ => throw new InvalidDataException($"'{path}': decoder '{type}' is not supported with a SentencePiece-style tokenizer (Replace, ByteFallback, Fuse, Strip, Metaspace)."),
            });
        }

        return new SentencePieceDecoder(steps);

        static int Count(JsonElement step, string name) =>
            step.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int count) && count >= 0 ? count : 0;

        static char StripContent(JsonElement step, string path) =>
            step.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String && content.GetString()!.Length == 1
                ? content.GetString()![0]
                : throw new InvalidDataException($"'{path}': a Strip decoder's content must be one character.");
    }

    /// <summary>generation_config.json's <c>eos_token_id</c>: one id or a list; none when the file or key is absent.</summary>
    private static int[] ReadGenerationEndIds(string directory)
    {
        string path = Path.Combine(directory, GenerationConfigFileName);
        if (!File.Exists(path))
        {
            return [];
        }

        using JsonDocument document = ParseJson(path);
        if (document.RootElement.ValueKind != JsonValueKind.Object || !document.RootElement.TryGetProperty("eos_token_id", out JsonElement eos))
        {
            return [];
        }

        IEnumerable<JsonElement> values = eos.ValueKind switch
        {
            JsonValueKind.Array => eos.EnumerateArray(),
            JsonValueKind.Null => [],
            _ => [eos],
        };
        return values.Select(value => value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int id) && id >= 0
                ? id
                : throw new InvalidDataException($"'{path}': eos_token_id holds {value.GetRawText()}, not a token id."))
            .ToArray();
    }

    private static string TypeOf(JsonElement element) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty("type", out JsonElement type) ? type.GetString() ?? "" : "";

    private sealed record TokenizerConfig(string? BosToken, string? EosToken, bool AddBosToken, bool AddEosToken, bool CleanUpTokenizationSpaces);

    private static TokenizerConfig ReadConfig(string directory)
    {
        string path = Path.Combine(directory, TokenizerConfigFileName);
        if (!File.Exists(path))
        {
            return new TokenizerConfig(null, null, false, false, false);
        }

        using JsonDocument document = ParseJson(path);
        JsonElement root = document.RootElement;
        return new TokenizerConfig(
            TokenString(root, "bos_token"),
            TokenString(root, "eos_token"),
            Flag(root, "add_bos_token"),
            Flag(root, "add_eos_token"),
            // Absent: no clean-up. transformers' deprecation warning announced False as the default from v4.45, and
            // the clean-up only makes sense for the word-level tokenizers it was written for.
            Flag(root, "clean_up_tokenization_spaces"));

        static bool Flag(JsonElement root, string name) =>
            root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.True;
    }

    /// <summary>A token named in tokenizer_config.json: a plain string or an AddedToken object {"content": ...}.</summary>
    internal static string? TokenString(JsonElement root, string name)
    {
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty(name, out JsonElement value))
        {
            return null;
        }

        JsonElement content = value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out JsonElement inner) ? inner : value;
        return content.ValueKind == JsonValueKind.String && content.GetString()!.Length > 0 ? content.GetString() : null;
    }

    /// <summary>Finds added-token text in a string, leftmost first and longest at a position, as tokenizers' Aho-Corasick (LeftmostLongest) does.</summary>
    private sealed class AddedTokenMatcher
    {
        // By first char, the tokens starting with it, longest first.
        private readonly Dictionary<char, AddedToken[]> _byFirstChar;
        private readonly SearchValues<char> _firstChars;

        public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
        {
            _byFirstChar = tokens
                .GroupBy(token => token.Content[0])
                .ToDictionary(group => group.Key, group => group.OrderByDescending(token => token.Content.Length).ToArray());
            _firstChars = SearchValues.Create(_byFirstChar.Keys.ToArray());
        }

        public (int Start, int Length, int Id) FindNext(string text, int from)
        {
            int position = from;
            while (position < text.Length)
            {
                int offset = text.AsSpan(position).IndexOfAny(_firstChars);
                if (offset < 0)
                {
                    break;
                }

                position += offset;
                foreach (AddedToken token in _byFirstChar[text[position]])
                {
                    if (text.AsSpan(position).StartsWith(token.Content, StringComparison.Ordinal))
                    {
                        return (position, token.Content.Length, token.Id);
                    }
                }

                position++;
            }

            return (-1, 0, 0);
        }
    }
}
