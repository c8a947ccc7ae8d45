namespace LlmServer.Training.Tokenization;

/// <summary>What <see cref="ByteLevelBpeTrainer"/> learns from a corpus.</summary>
public sealed record ByteLevelBpeOptions
{
    /// <summary>The 256 byte tokens plus <c>&lt;|endoftext|&gt;</c>: the smallest vocabulary there is.</summary>
    public const int MinimumVocabularySize = 257;

    /// <summary>
    /// Every id the tokenizer may produce: the 256 byte tokens, the learned merges and
    /// <c>&lt;|endoftext|&gt;</c>. Training stops short of it when no pair is frequent enough any more.
    /// </summary>
    public required int VocabularySize { get; init; }

    /// <summary>
    /// Never merge an ASCII digit with anything, so every number is spelled one token per digit (as
    /// LLaMA does): a small model then sees "1234" and "1243" as the same four symbols reordered and
    /// learns arithmetic far better than from arbitrary multi-digit chunks.
    /// </summary>
    public bool SplitDigits { get; init; } = true;

    /// <summary>Stop early once no pair occurs this often; a merge seen once is memorisation, not compression.</summary>
    public int MinimumPairCount { get; init; } = 2;
}
