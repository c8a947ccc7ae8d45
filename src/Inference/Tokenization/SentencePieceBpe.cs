using System.Text;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// The encoding half of a SentencePiece-style BPE <c>tokenizer.json</c> (Llama 2, TinyLlama, Mistral 7B): spaces
/// become "▁", a "▁" goes in front of the text, and each character is a vocabulary entry or, with
/// <c>byte_fallback</c>, its UTF-8 bytes as the tokens <c>&lt;0x00&gt;</c>..<c>&lt;0xFF&gt;</c>; then the merges apply.
/// Follows Hugging Face tokenizers' <c>BPE::merge_word</c>, its Prepend/Replace normalizers and its Metaspace
/// pre-tokenizer. Immutable; one <see cref="ByteLevelBpe.Workspace"/> per encode call.
/// </summary>
internal sealed class SentencePieceBpe
{
    /// <summary>SentencePiece's stand-in for a space, U+2581.</summary>
    public const char SpaceSymbol = '\u2581';

    private const int NoToken = -1;

    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _vocabulary;
    private readonly ByteLevelBpe _bpe;
    private readonly int[] _idByByte;
    private readonly bool _byteFallback;
    private readonly int _unknownId;
    private readonly bool _fuseUnknown;
    private readonly bool _ignoreMerges;
    private readonly IReadOnlyList<NormalizerStep> _normalizer;
    private readonly MetaspaceOptions? _metaspace;

    public SentencePieceBpe(
        Dictionary<string, int> vocabulary,
        ByteLevelBpe bpe,
        bool byteFallback,
        int unknownId,
        bool fuseUnknown,
        bool ignoreMerges,
        IReadOnlyList<NormalizerStep> normalizer,
        MetaspaceOptions? metaspace)
    {
        _vocabulary = vocabulary.GetAlternateLookup<ReadOnlySpan<char>>();
        _bpe = bpe;
        _byteFallback = byteFallback;
        _unknownId = unknownId;
        _fuseUnknown = fuseUnknown;
        _ignoreMerges = ignoreMerges;
        _normalizer = normalizer;
        _metaspace = metaspace;
        _idByByte = new int[256];
        for (int value = 0; value < _idByByte.Length; value++)
        {
            _idByByte[value] = vocabulary.TryGetValue(ByteTokenName((byte)value), out int id) ? id : NoToken;
        }
    }

    /// <summary>One step of tokenizer.json's <c>normalizer</c> that these files use, applied in order.</summary>
    public abstract record NormalizerStep;

    /// <summary>Puts <paramref name="Prefix"/> in front of a non-empty text (Llama 2: "▁").</summary>
    public sealed record Prepend(string Prefix) : NormalizerStep;

    /// <summary>Replaces every <paramref name="Pattern"/> (a literal string) with <paramref name="Content"/> (Llama 2: " " to "▁").</summary>
    public sealed record Replace(string Pattern, string Content) : NormalizerStep;

    public sealed record Nfc : NormalizerStep;

    public enum PrependScheme
    {
        Always,
        First,
        Never,
    }

    /// <summary>The Metaspace pre-tokenizer: spaces to <paramref name="Replacement"/>, which is prepended per
    /// <paramref name="Scheme"/> (First: only to text at the very start of the input) unless already there; with
    /// <paramref name="Split"/>, the text is cut before each <paramref name="Replacement"/>.</summary>
    public sealed record MetaspaceOptions(char Replacement, PrependScheme Scheme, bool Split);

    /// <summary>Whether one unk token can stand for a run of characters of any length (fuse_unk, and a character can
    /// be unknown: no byte fallback, or a byte token missing): then no token length bounds how much text a token covers.</summary>
    public bool FusesUnknownRuns => _fuseUnknown && _unknownId != NoToken && !(_byteFallback && _idByByte.All(id => id != NoToken));

    /// <summary>The vocabulary entry of byte fallback's token for <paramref name="value"/>: "&lt;0x0A&gt;".</summary>
    public static string ByteTokenName(byte value) => $"<0x{value:X2}>";

    /// <summary>The normalizer's steps in order (Llama 2: "▁" in front of a non-empty text, then spaces to "▁").</summary>
    public string Normalize(string text)
    {
        foreach (NormalizerStep step in _normalizer)
        {
            text = step switch
            {
                Prepend prepend => text.Length == 0 ? text : prepend.Prefix + text,
                Replace replace => text.Replace(replace.Pattern, replace.Content, StringComparison.Ordinal),
                Nfc => text.IsNormalized(NormalizationForm.FormC) ? text : text.Normalize(NormalizationForm.FormC),
                _ => throw new InvalidOperationException($"normalizer step {step} has no implementation"),
            };
        }

        return text;
    }

    /// <summary>
    /// Appends the ids of one stretch of normalized text between added tokens. <paramref name="atTextStart"/>: the
    /// stretch begins the input (Metaspace's "first" scheme prepends "▁" only there, not after a special token).
    /// </summary>
    public void EncodeNormalized(string text, bool atTextStart, List<int> ids, ByteLevelBpe.Workspace workspace, CancellationToken cancellationToken)
    {
        if (text.Length == 0)
        {
            return;
        }

        if (_metaspace is not { } metaspace)
        {
            // No pre-tokenizer (Llama 2's file): the whole normalized stretch is one word.
            EncodeWord(text, ids, workspace, cancellationToken);
            return;
        }

        text = text.Replace(' ', metaspace.Replacement);
        bool prepend = metaspace.Scheme == PrependScheme.Always || (metaspace.Scheme == PrependScheme.First && atTextStart);
        if (prepend && text[0] != metaspace.Replacement)
        {
            text = metaspace.Replacement + text;
        }

        if (!metaspace.Split)
        {
            EncodeWord(text, ids, workspace, cancellationToken);
            return;
        }

        // Split with MergedWithNext: every replacement character starts a new word.
        int start = 0;
        for (int i = 1; i <= text.Length; i++)
        {
            if (i == text.Length || text[i] == metaspace.Replacement)
            {
                EncodeWord(text.AsSpan(start, i - start), ids, workspace, cancellationToken);
                start = i;
            }
        }
    }

    /// <summary>Hugging Face's <c>merge_word</c>: one symbol per character (or its fallback bytes, or unk), then the merges.</summary>
    private void EncodeWord(ReadOnlySpan<char> word, List<int> ids, ByteLevelBpe.Workspace workspace, CancellationToken cancellationToken)
    {
        if (_ignoreMerges && _vocabulary.TryGetValue(word, out int whole))
        {
            // ignore_merges: a word that is itself a vocabulary entry is that entry.
            ids.Add(whole);
            return;
        }

        // A UTF-16 char is at most 3 UTF-8 bytes (a surrogate pair: 4 for 2 chars), so at most 3 fallback symbols.
        workspace.EnsureCapacity(3 * word.Length + 1);
        ByteLevelBpe.Symbol[] symbols = workspace.Symbols;
        int count = 0;
        bool pendingUnknown = false;
        for (int i = 0; i < word.Length;)
        {
            int length = char.IsHighSurrogate(word[i]) && i + 1 < word.Length && char.IsLowSurrogate(word[i + 1]) ? 2 : 1;
            ReadOnlySpan<char> character = word.Slice(i, length);
            i += length;
            if (_vocabulary.TryGetValue(character, out int id))
            {
                if (pendingUnknown)
                {
                    symbols[count++].Id = _unknownId;
                    pendingUnknown = false;
                }

                symbols[count++].Id = id;
                continue;
            }

            // As tokenizers does, fallback bytes go in without first emitting a pending unk (which only happens
            // when the vocabulary lacks some byte tokens).
            if (_byteFallback && TryAddFallbackBytes(character, symbols, ref count))
            {
                continue;
            }

            if (_unknownId != NoToken)
            {
                if (pendingUnknown && !_fuseUnknown)
                {
                    symbols[count++].Id = _unknownId;
                }

                pendingUnknown = true;
            }
        }

        if (pendingUnknown)
        {
            symbols[count++].Id = _unknownId;
        }

        _bpe.Merge(count, ids, workspace, cancellationToken);
    }

    private bool TryAddFallbackBytes(ReadOnlySpan<char> character, ByteLevelBpe.Symbol[] symbols, ref int count)
    {
        Span<byte> bytes = stackalloc byte[4];
        int byteCount = Encoding.UTF8.GetBytes(character, bytes);
        for (int i = 0; i < byteCount; i++)
        {
            if (_idByByte[bytes[i]] == NoToken)
            {
                return false;
            }
        }

        for (int i = 0; i < byteCount; i++)
        {
            symbols[count++].Id = _idByByte[bytes[i]];
        }

        return true;
    }
}
