using System.Text.Json;
using System.Text.Json.Serialization;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Completions;

/// <summary>
/// POST /v1/completions. Fields whose JSON type varies (prompt, stop) stay JsonElement and are
/// checked by the serving layer, which can then name the parameter in its error. Every field of
/// OpenAI's CreateCompletionRequest is here; any other is "Unrecognized request argument".
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CompletionRequest : SamplingRequestFields
{
    public string? Model { get; init; }
    public JsonElement Prompt { get; init; }
    public int? Logprobs { get; init; }
    public bool? Echo { get; init; }
    public string? Suffix { get; init; }
    public int? BestOf { get; init; }
    /// <summary>vLLM's extension: each prompt token's logprob plus this many alternatives, as <c>prompt_logprobs</c> on each choice.</summary>
    public int? PromptLogprobs { get; init; }
    /// <summary>Not in OpenAI's completions; vLLM's extension, the same as chat's.</summary>
    public JsonElement ResponseFormat { get; init; }
}

public sealed record CompletionResponse(string Id, long Created, string Model, IReadOnlyList<CompletionChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] Usage? Usage)
{
    public string Object => "text_completion";
    /// <summary>Which weights answered (see ServedModel.Fingerprint): one value per response, however it was streamed.</summary>
    public string? SystemFingerprint { get; init; }
}

public sealed record CompletionChoice(
    int Index,
    string Text,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] CompletionLogprobs? Logprobs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason,
    object? StopReason = null)
{
    /// <summary>vLLM's prompt_logprobs; left out unless asked for.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, PromptLogprobEntry>?>? PromptLogprobs { get; init; }
}

/// <summary>
/// One event of a streamed completion: the response's shape, with <c>usage</c> as a stream carries it.
/// </summary>
/// <param name="Usage">Null leaves the key out; <see cref="StreamChunkUsage.Pending"/> writes "usage": null.</param>
public sealed record CompletionChunk(string Id, long Created, string Model, IReadOnlyList<CompletionChoice> Choices,
    [property: JsonConverter(typeof(StreamChunkUsage))] Usage? Usage)
{
    public string Object => "text_completion";
    /// <summary>Which weights answered (see ServedModel.Fingerprint): one value per response, however it was streamed.</summary>
    public string? SystemFingerprint { get; init; }
}

/// <summary>
/// The legacy logprobs shape: parallel lists per token (with echo, the prompt's tokens first, whose first
/// has no logprob: null).
/// </summary>
public sealed record CompletionLogprobs(
    IReadOnlyList<int> TextOffset,
    IReadOnlyList<float?> TokenLogprobs,
    IReadOnlyList<string> Tokens,
    IReadOnlyList<IReadOnlyDictionary<string, float>?>? TopLogprobs)
{
    public CompletionLogprobs Concat(CompletionLogprobs next) => new([.. TextOffset, .. next.TextOffset], [.. TokenLogprobs, .. next.TokenLogprobs],
        [.. Tokens, .. next.Tokens], [.. TopLogprobs ?? [], .. next.TopLogprobs ?? []]);
}
