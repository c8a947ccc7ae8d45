namespace LlmServer.ChatTemplates;

/// <summary>One OpenAI-style chat message as a chat template sees it.</summary>
/// <param name="Role">The speaker: <c>system</c>, <c>user</c>, <c>assistant</c>, <c>tool</c>, ...</param>
/// <param name="Content">The message text; an assistant turn that only called tools has "" (as vLLM passes it).</param>
/// <param name="Name">Optional participant name; exposed to the template only when set.</param>
public sealed record ChatMessage(string Role, string Content, string? Name = null)
{
    /// <summary>An assistant turn's tool calls (the template's <c>message.tool_calls</c>); exposed only when set.</summary>
    public IReadOnlyList<ChatToolCall>? ToolCalls { get; init; }

    /// <summary>A tool turn's answer to which call (<c>message.tool_call_id</c>); exposed only when set.</summary>
    public string? ToolCallId { get; init; }
}
