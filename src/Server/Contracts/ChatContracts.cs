using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmServer.Contracts;

/// <summary>POST /v1/chat/completions.</summary>
public sealed record ChatCompletionRequest : SamplingRequestFields
{
    public string? Model { get; init; }
    public IReadOnlyList<ChatMessageRequest>? Messages { get; init; }
    public bool? Logprobs { get; init; }
    public int? TopLogprobs { get; init; }
    /// <summary>Newer name of max_tokens for chat; the official SDKs send this one.</summary>
    public int? MaxCompletionTokens { get; init; }
    public JsonElement Tools { get; init; }
    public JsonElement ResponseFormat { get; init; }
    public bool? AddGenerationPrompt { get; init; }
}

/// <summary>A message as clients send it: content is a string or a list of parts.</summary>
public sealed record ChatMessageRequest(string? Role, JsonElement Content, string? Name);

public sealed record ChatCompletionResponse(string Id, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage Usage)
{
    public string Object => "chat.completion";
    /// <summary>Which weights answered (see ServedModel.Fingerprint): one value per response, however it was streamed.</summary>
    public string? SystemFingerprint { get; init; }
}

public sealed record ChatChoice(
    int Index,
    ChatResponseMessage Message,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ChatLogprobs? Logprobs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason,
    object? StopReason = null);

public sealed record ChatResponseMessage(string Role, string Content)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? Refusal => null;
}

public sealed record ChatLogprobs(IReadOnlyList<ChatTokenLogprob> Content)
{
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IReadOnlyList<ChatTokenLogprob>? Refusal => null;
}

public sealed record ChatTokenLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes, IReadOnlyList<ChatTopLogprob> TopLogprobs);

public sealed record ChatTopLogprob(string Token, float Logprob, IReadOnlyList<int> Bytes);

/// <param name="Usage">Null leaves the key out; <see cref="StreamChunkUsage.Pending"/> writes "usage": null.</param>
public sealed record ChatCompletionChunk(string Id, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices,
    [property: JsonConverter(typeof(StreamChunkUsage))] Usage? Usage)
{
    public string Object => "chat.completion.chunk";
    /// <summary>Which weights answered (see ServedModel.Fingerprint): one value per response, however it was streamed.</summary>
    public string? SystemFingerprint { get; init; }
}

public sealed record ChatChunkChoice(
    int Index,
    ChatDelta Delta,
    ChatLogprobs? Logprobs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason,
    object? StopReason = null);

public sealed record ChatDelta(string? Role, string? Content);
