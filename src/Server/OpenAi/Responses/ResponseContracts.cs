using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmServer.OpenAi.Responses;

/// <summary>
/// POST /v1/responses: the fields of OpenAI's CreateResponse that a text model can honour, and a few accepted without
/// effect; any other field is "Unrecognized request argument", as for chat, rather than silently doing nothing.
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CreateResponseRequest
{
    public string? Model { get; init; }
    public JsonElement Input { get; init; }
    public string? Instructions { get; init; }
    public int? MaxOutputTokens { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public JsonElement Text { get; init; }
    public JsonElement Tools { get; init; }
    public JsonElement ToolChoice { get; init; }
    public bool? ParallelToolCalls { get; init; }
    public bool? Store { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
    public bool? Stream { get; init; }
    public string? PreviousResponseId { get; init; }

    // Accepted and without effect here: who asks, and cache hints.
    public string? User { get; init; }
    public string? SafetyIdentifier { get; init; }
    public string? PromptCacheKey { get; init; }
    public string? ServiceTier { get; init; }
    /// <summary>"disabled" (the default) is what this server does: a conversation longer than the context is refused, never cut.</summary>
    public string? Truncation { get; init; }
    /// <summary>Extra output (reasoning, logprobs ...) this server does not produce; only an empty list is accepted.</summary>
    public JsonElement Include { get; init; }
    public JsonElement Reasoning { get; init; }
    public bool? Background { get; init; }
}

/// <summary>An item of a conversation, input or output, as the Responses API writes it.</summary>
[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(MessageItem), "message")]
[JsonDerivedType(typeof(FunctionCallItem), "function_call")]
[JsonDerivedType(typeof(FunctionCallOutputItem), "function_call_output")]
public abstract record ResponseItem(string Id);

public sealed record MessageItem(string Id, string Role, string Status, IReadOnlyList<ContentPart> Content) : ResponseItem(Id)
{
    /// <summary>The message's text parts joined, as a chat template takes a turn.</summary>
    public string JoinedText() => string.Concat(Content.Select(p => p switch
    {
        InputText input => input.Text,
        OutputText output => output.Text,
        _ => "",
    }));
}

public sealed record FunctionCallItem(string Id, string CallId, string Name, string Arguments, string Status) : ResponseItem(Id);

public sealed record FunctionCallOutputItem(string Id, string CallId, string Output, string Status) : ResponseItem(Id);

[JsonPolymorphic(TypeDiscriminatorPropertyName = "type")]
[JsonDerivedType(typeof(InputText), "input_text")]
[JsonDerivedType(typeof(OutputText), "output_text")]
public abstract record ContentPart;

public sealed record InputText(string Text) : ContentPart;

public sealed record OutputText(string Text) : ContentPart
{
    public IReadOnlyList<object> Annotations { get; init; } = [];
    public IReadOnlyList<object> Logprobs { get; init; } = [];
}

/// <summary>OpenAI's Response object: the output and the echo of the request's settings.</summary>
public sealed record ResponseObject(string Id, long CreatedAt, string Status, string Model, IReadOnlyList<ResponseItem> Output)
{
    public string Object => "response";
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public object? Error { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public IncompleteDetails? IncompleteDetails { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? Instructions { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public int? MaxOutputTokens { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public double? Temperature { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public double? TopP { get; init; }
    public JsonElement Text { get; init; }
    public JsonElement Tools { get; init; }
    public JsonElement ToolChoice { get; init; }
    public bool ParallelToolCalls { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? PreviousResponseId { get; init; }
    public bool Store { get; init; }
    public Dictionary<string, string> Metadata { get; init; } = [];
    public string Truncation => "disabled";
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public object? Reasoning { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? User { get; init; }
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public ResponseUsage? Usage { get; init; }
}

public sealed record IncompleteDetails(string Reason);

public sealed record ResponseUsage(int InputTokens, int OutputTokens, int TotalTokens, InputTokensDetails InputTokensDetails, OutputTokensDetails OutputTokensDetails);

public sealed record InputTokensDetails(int CachedTokens);

public sealed record OutputTokensDetails(int ReasoningTokens);

public sealed record ResponseDeleted(string Id)
{
    public string Object => "response";
    public bool Deleted => true;
}

public sealed record ResponseItemList(IReadOnlyList<ResponseItem> Data, bool HasMore)
{
    public string Object => "list";
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? FirstId => Data.Count > 0 ? Data[0].Id : null;
    [JsonIgnore(Condition = JsonIgnoreCondition.Never)] public string? LastId => Data.Count > 0 ? Data[^1].Id : null;
}

/// <summary>What is kept of a stored response: the response, and the input items this request added to the conversation.</summary>
public sealed record StoredResponse(ResponseObject Response, IReadOnlyList<ResponseItem> InputItems);
