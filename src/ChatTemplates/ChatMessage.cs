namespace LlmServer.ChatTemplates;

/// <summary>One OpenAI-style chat message as a chat template sees it.</summary>
/// <param name="Role">The speaker: <c>system</c>, <c>user</c>, <c>assistant</c>, <c>tool</c>, ...</param>
/// <param name="Content">The message text.</param>
/// <param name="Name">Optional participant name; exposed to the template only when set.</param>
public sealed record ChatMessage(string Role, string Content, string? Name = null);
