using System.Text;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// Turns a stream of token ids into text deltas that never split a multi-byte UTF-8 character.
/// Bytes of a character that is still incomplete are held back until the rest arrives; bytes that
/// can no longer form a valid character are emitted as U+FFFD at once. Concatenating every delta and
/// <see cref="Flush"/> gives exactly <see cref="ITokenizer.Decode"/> of the same ids.
/// Not thread-safe: one instance per stream.
/// </summary>
public sealed class IncrementalDetokenizer
{
    // A UTF-8 character is at most 4 bytes, so at most 3 can be held back, and together with the
    // new bytes they decode to at most (new bytes + 3) UTF-16 chars (a 4-byte character is 2 chars).
    private const int MaxHeldBackChars = 4;
    private const int StackBufferChars = 256;

    private readonly ITokenizer _tokenizer;

    // System.Text.Decoder keeps the partial character between calls and applies the same
    // maximal-subpart replacement rules as the one-shot decoding in the tokenizers' Decode.
    private readonly Decoder _utf8 =
        new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();

    private readonly StringBuilder _emitted = new();
    private string? _emittedSnapshot = string.Empty;

    public IncrementalDetokenizer(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
    }

    /// <summary>All text emitted so far by <see cref="Push"/> and <see cref="Flush"/>.</summary>
    public string Text => _emittedSnapshot ??= _emitted.ToString();

    /// <summary>
    /// <c>Text.Length</c> without building the string: <see cref="Text"/> copies everything emitted
    /// since its last call, so calling it after every token costs O(length) each time.
    /// </summary>
    public int TextLength => _emitted.Length;

    /// <summary>Adds one token and returns the text it completes (may be empty).</summary>
    public string Push(int tokenId) => DecodeNext(_tokenizer.TokenBytes(tokenId), flush: false);

    /// <summary>
    /// Ends the stream: held-back bytes of an unfinished character come out as U+FFFD.
    /// The instance can be reused for a new stream afterwards.
    /// </summary>
    public string Flush() => DecodeNext(ReadOnlySpan<byte>.Empty, flush: true);

    private string DecodeNext(ReadOnlySpan<byte> bytes, bool flush)
    {
        int maxChars = bytes.Length + MaxHeldBackChars;
        Span<char> chars = maxChars <= StackBufferChars
            ? stackalloc char[StackBufferChars]
            : new char[maxChars];

        int charCount = _utf8.GetChars(bytes, chars, flush);
        if (charCount == 0)
        {
            return string.Empty;
        }

        var delta = new string(chars[..charCount]);
        _emitted.Append(delta);
        _emittedSnapshot = null;
        return delta;
    }
}
