using System.Text;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;

namespace LlmServer.OpenAi.Generation;

/// <summary>Collects the events of one choice: its text, tokens, and how it ended.</summary>
public sealed class ChoiceAccumulator
{
    private readonly StringBuilder _text = new();
    private readonly List<GeneratedToken> _tokens = [];

    public string Text => _text.ToString();
    public IReadOnlyList<GeneratedToken> Tokens => _tokens;
    public FinishReason? FinishReason { get; private set; }
    /// <summary>vLLM's stop_reason: the stop string, or the stop token's id (a number), or null.</summary>
    public object? StopReason { get; private set; }
    public string? ErrorMessage { get; private set; }
    public int PromptTokens { get; private set; }
    public int CompletionTokens { get; private set; }
    public int CachedPromptTokens { get; private set; }
    /// <summary>The prompt tokens' logprobs (the first null), when the request asked for them.</summary>
    public IReadOnlyList<PromptTokenLogprob?>? PromptLogprobs { get; private set; }

    /// <summary>The sum of the sampled tokens' logprobs: how likely the model found the whole completion.</summary>
    public double CumulativeLogprob => _tokens.Sum(t => (double)(t.Logprob ?? 0));

    public void Add(GenerationEvent generated)
    {
        _text.Append(generated.TextDelta);
        _tokens.AddRange(generated.Tokens);
        PromptTokens = generated.PromptTokenCount;
        CompletionTokens = generated.OutputTokenCount;
        CachedPromptTokens = generated.CachedPromptTokenCount;
        PromptLogprobs ??= generated.PromptLogprobs;
        if (generated.FinishReason is { } reason)
        {
            FinishReason = reason;
            StopReason = WireStopReason(generated);
            ErrorMessage = generated.ErrorMessage;
        }
    }

    public static object? WireStopReason(GenerationEvent generated) => (object?)generated.StopTokenId ?? generated.StopReason;

    /// <summary>OpenAI's finish_reason; a choice the engine could not finish is an error, not a reason.</summary>
    public static string WireFinishReason(FinishReason reason) => reason switch
    {
        Inference.Engine.FinishReason.Stop => "stop",
        Inference.Engine.FinishReason.Length => "length",
        _ => throw new InvalidOperationException($"{reason} is not a client-visible finish reason"),
    };

    /// <summary>The error a failed or aborted choice turns into.</summary>
    public static ApiException Failure(GenerationEvent generated) => generated.FinishReason == Inference.Engine.FinishReason.Aborted
        ? new ApiException(StatusCodes.Status503ServiceUnavailable, generated.ErrorMessage ?? "The request was aborted.", "service_unavailable",
            // A reader only ever sees Aborted when the engine stops under it (a drain timeout at shutdown):
            // a client's own abort has no reader left. So the code follows from the reason, not the text.
            code: "server_shutting_down")
        : new ApiException(StatusCodes.Status500InternalServerError, generated.ErrorMessage ?? "The engine failed.", "server_error");

    public static bool IsFailure(GenerationEvent generated) =>
        generated.FinishReason is Inference.Engine.FinishReason.Error or Inference.Engine.FinishReason.Aborted;
}
