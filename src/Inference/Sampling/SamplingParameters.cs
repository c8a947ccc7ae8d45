namespace LlmServer.Inference.Sampling;

/// <summary>How one request picks its tokens and when it stops. Validated by the API layer; the engine trusts it.</summary>
public sealed record SamplingParameters
{
    /// <summary>0 means greedy.</summary>
    public double Temperature { get; init; } = 1.0;
    public double TopP { get; init; } = 1.0;
    /// <summary>0 means no top-k cut.</summary>
    public int TopK { get; init; }
    /// <summary>Same seed, same prompt, same parameters: same tokens.</summary>
    public long? Seed { get; init; }
    public int MaxTokens { get; init; } = 16;
    /// <summary>End-of-text and stop tokens are not honoured before this many tokens.</summary>
    public int MinTokens { get; init; }
    public IReadOnlyList<string> StopStrings { get; init; } = [];
    public IReadOnlyList<int> StopTokenIds { get; init; } = [];
    /// <summary>Keep generating past end-of-text (benchmarks use this for fixed output lengths).</summary>
    public bool IgnoreEos { get; init; }
    public double PresencePenalty { get; init; }
    public double FrequencyPenalty { get; init; }
    public IReadOnlyDictionary<int, double> LogitBias { get; init; } = new Dictionary<int, double>();
    /// <summary>null: no logprobs; otherwise the sampled token's logprob plus this many alternatives.</summary>
    public int? Logprobs { get; init; }
    /// <summary>
    /// null: none; otherwise each prompt token's logprob given the tokens before it, plus this many alternatives.
    /// Such a request computes its whole prompt: a prefix-cache hit would skip the positions it asks about.
    /// </summary>
    public int? PromptLogprobs { get; init; }
    /// <summary>What the output must be (a JSON schema's documents, tool calls); null: free text.</summary>
    public StructuredOutput.GrammarConstraint? Constraint { get; init; }

    /// <summary>
    /// Below vLLM's sampling epsilon a temperature is greedy: dividing logits by it would
    /// overflow float to infinity and leave nothing to draw from.
    /// </summary>
    public bool IsGreedy => Temperature < 1e-5;
}
