namespace LlmServer.Inference.Tokenization;

/// <summary>
/// What serving needs from a tokenizer, whichever files it was loaded from: GPT-2's vocab.json +
/// merges.txt (<see cref="Gpt2Tokenizer"/>) or a Hugging Face tokenizer.json
/// (<see cref="HuggingFaceTokenizer"/>). Implementations are immutable and thread-safe.
/// </summary>
public interface ITokenizer
{
    /// <summary>Number of distinct ids, added tokens included.</summary>
    int VocabSize { get; }

    /// <summary>The end-of-sequence token of tokenizer_config.json (GPT-2: &lt;|endoftext|&gt;).</summary>
    int EndOfTextId { get; }

    string EndOfTextToken { get; }

    /// <summary>Every id that ends a reply: <see cref="EndOfTextId"/> and, for a Hugging Face checkpoint, each id of
    /// generation_config.json's <c>eos_token_id</c> (Llama 3.1's &lt;|eot_id|&gt; beside &lt;|end_of_text|&gt;).</summary>
    IReadOnlyList<int> EndOfSequenceIds => [EndOfTextId];

    /// <summary>The most bytes one token stands for: no token covers more of a text.</summary>
    int MaxTokenByteLength { get; }

    /// <summary>
    /// Encodes without adding special tokens (Hugging Face's <c>add_special_tokens=False</c>);
    /// special-token text inside <paramref name="text"/> still becomes the special token, as Hugging
    /// Face's encode does by default. Stops once the result has more than <paramref name="maxTokens"/> ids.
    /// </summary>
    IReadOnlyList<int> Encode(string text, int maxTokens, CancellationToken cancellationToken);

    /// <summary>The whole text, without adding special tokens.</summary>
    IReadOnlyList<int> Encode(string text) => Encode(text, int.MaxValue, CancellationToken.None);

    IReadOnlyList<int> Encode(string text, CancellationToken cancellationToken) => Encode(text, int.MaxValue, cancellationToken);

    /// <summary>As <see cref="Encode(string, int, CancellationToken)"/>, then adds what the tokenizer's
    /// post-processor adds when <paramref name="addSpecialTokens"/> is set (Llama 3: &lt;|begin_of_text|&gt;).</summary>
    IReadOnlyList<int> Encode(string text, bool addSpecialTokens, int maxTokens, CancellationToken cancellationToken);

    /// <summary>The fewest tokens <paramref name="text"/> can encode to, from its UTF-8 length alone.</summary>
    long MinTokenCount(string text);

    /// <summary>The tokens' bytes, concatenated and decoded as UTF-8 (U+FFFD for malformed sequences).</summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>The raw bytes token <paramref name="id"/> stands for (not necessarily valid UTF-8 on its own).</summary>
    ReadOnlySpan<byte> TokenBytes(int id);

    bool IsValidId(int id);

    /// <summary>The token's bytes decoded on their own, with U+FFFD for a partial character (logprobs' token text).</summary>
    string TokenText(int id);

    /// <summary>Whether <paramref name="id"/> is a special token (skipped by <c>skip_special_tokens</c>).</summary>
    bool IsSpecialId(int id);
}
