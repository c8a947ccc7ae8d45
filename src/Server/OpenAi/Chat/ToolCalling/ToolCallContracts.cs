using System.Text.Json.Serialization;

namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>One call of an assistant message's <c>tool_calls</c>; <c>arguments</c> is the raw JSON text the model wrote.</summary>
public sealed record ToolCall(string Id, string Type, FunctionCall Function);

/// <summary>A call's function: also the deprecated <c>message.function_call</c>.</summary>
public sealed record FunctionCall(string Name, string Arguments);

/// <summary>
/// A streamed call as OpenAI streams it: the first delta carries index, id, type and the name with empty arguments,
/// the next ones index and an arguments fragment only.
/// </summary>
public sealed record ToolCallDelta(int Index, string? Id, string? Type, FunctionCallDelta Function);

/// <summary>The function part of a streamed call, and the deprecated streamed <c>function_call</c>.</summary>
public sealed record FunctionCallDelta(string? Name, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string Arguments);
