using System.Text.Json;
using System.Text.Json.Serialization;
using LlmServer.OpenAi.Chat.ToolCalling;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Chat;

/// <summary>
/// POST /v1/chat/completions: every field of OpenAI's CreateChatCompletionRequest, so that a field
/// this server cannot honour is refused by name (ChatRequestFeatures) and a misspelt one is
/// "Unrecognized request argument" instead of silently doing nothing. docs/api.md lists which
/// fields are honoured, accepted as harmless, or refused.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record ChatCompletionRequest : SamplingRequestFields
{
    public string? Model { get; init; }
    public IReadOnlyList<ChatMessageRequest>? Messages { get; init; }
    public bool? Logprobs { get; init; }
    public int? TopLogprobs { get; init; }
    /// <summary>Newer name of max_tokens for chat; the official SDKs send this one.</summary>
    public int? MaxCompletionTokens { get; init; }
    public JsonElement ResponseFormat { get; init; }
    /// <summary>vLLM's extension: the rendered prompt's token logprobs plus this many alternatives, as <c>prompt_logprobs</c> on the response.</summary>
    public int? PromptLogprobs { get; init; }

    // Tool and function calling (ToolCalling/ToolCallingRequest reads them).
    public JsonElement Tools { get; init; }
    public JsonElement ToolChoice { get; init; }
    public bool? ParallelToolCalls { get; init; }
    public JsonElement Functions { get; init; }
    public JsonElement FunctionCall { get; init; }

    // Output this text-only model cannot give: refused unless they ask for what it does anyway.
    public IReadOnlyList<string>? Modalities { get; init; }
    public JsonElement Audio { get; init; }
    public string? ReasoningEffort { get; init; }
    public string? Verbosity { get; init; }
    public JsonElement WebSearchOptions { get; init; }
    public JsonElement Moderation { get; init; }

    // Accepted and without effect here; docs/api.md says why for each.
    public bool? Store { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
    public string? ServiceTier { get; init; }
    public JsonElement Prediction { get; init; }
    public string? SafetyIdentifier { get; init; }
    public string? PromptCacheKey { get; init; }
    public string? PromptCacheRetention { get; init; }
    public JsonElement PromptCacheOptions { get; init; }

    // vLLM's extension: render the chat template without opening an assistant turn.
    public bool? AddGenerationPrompt { get; init; }
}

/// <summary>
/// A message as clients send it: content is a string or a list of parts. The tool-calling members reach
/// a chat template that renders tool calls, and are refused for one that does not rather than flattened
/// into empty turns (ChatMessages).
/// </summary>
public sealed record ChatMessageRequest(string? Role, JsonElement Content, string? Name)
{
    public JsonElement ToolCalls { get; init; }
    public string? ToolCallId { get; init; }
    public JsonElement FunctionCall { get; init; }
}

public sealed record ChatCompletionResponse(string Id, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage Usage)
{
    public string Object => "chat.completion";
    /// <summary>Which weights answered (see ServedModel.Fingerprint): one value per response, however it was streamed.</summary>
    public string? SystemFingerprint { get; init; }
    /// <summary>vLLM's prompt_logprobs (every choice shares the prompt); left out unless asked for.</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, PromptLogprobEntry>?>? PromptLogprobs { get; init; }
}

public sealed record ChatChoice(
    int Index,
    ChatResponseMessage Message,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] ChatLogprobs? Logprobs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FinishReason,
    object? StopReason = null);

/// <summary>The reply: content null when it was only tool calls; function_call for a request that used the deprecated functions.</summary>
public sealed record ChatResponseMessage(string Role, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Content)
{
    public IReadOnlyList<ToolCall>? ToolCalls { get; init; }
    public FunctionCall? FunctionCall { get; init; }

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

public sealed record ChatDelta(string? Role, string? Content)
{
    public IReadOnlyList<ToolCallDelta>? ToolCalls { get; init; }
    public FunctionCallDelta? FunctionCall { get; init; }
}
