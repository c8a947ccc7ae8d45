using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>
/// What one engine step produced for one request. <see cref="TextDelta"/> can be empty while the
/// detokenizer waits for the rest of a multi-byte character or text might still become a stop string;
/// the tokens are reported anyway so counts and logprobs stay exact.
/// </summary>
public sealed record GenerationEvent
{
    public required string RequestId { get; init; }
    public required string TextDelta { get; init; }
    public required IReadOnlyList<GeneratedToken> Tokens { get; init; }
    public FinishReason? FinishReason { get; init; }
    /// <summary>The stop string that ended the request, when one did.</summary>
    public string? StopReason { get; init; }
    /// <summary>The stop token (from stop_token_ids) that ended the request, when one did.</summary>
    public int? StopTokenId { get; init; }
    public required int PromptTokenCount { get; init; }
    public required int OutputTokenCount { get; init; }
    /// <summary>Prompt tokens whose keys and values came from the prefix cache.</summary>
    public int CachedPromptTokenCount { get; init; }
    /// <summary>
    /// Each prompt token's logprob given those before it (the first: null), once the whole prompt has been computed;
    /// on one event only, and only when the request asked for them.
    /// </summary>
    public IReadOnlyList<PromptTokenLogprob?>? PromptLogprobs { get; init; }
    public string? ErrorMessage { get; init; }
    /// <summary>When the request was queued, scheduled, gave its first token and finished; on the final event only.</summary>
    public RequestTimings? Timings { get; init; }

    public bool IsFinal => FinishReason is not null;
}
