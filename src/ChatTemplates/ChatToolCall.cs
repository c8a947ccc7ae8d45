using System.Text.Json;

namespace LlmServer.ChatTemplates;

/// <summary>
/// One function call of an assistant turn, as tool-calling chat templates (Llama 3.1, Qwen2.5, Qwen3) read it:
/// <c>{"id", "type": "function", "function": {"name", "arguments"}}</c> with <c>arguments</c> an object, which
/// is how transformers expects them and what vLLM makes of OpenAI's JSON-string arguments before rendering.
/// </summary>
/// <param name="Id">The call's id, which a tool message's <c>tool_call_id</c> answers; exposed only when set.</param>
/// <param name="Name">The function called.</param>
/// <param name="Arguments">The arguments as a JSON value (an object for every well-formed call).</param>
public sealed record ChatToolCall(string? Id, string Name, JsonElement Arguments);
