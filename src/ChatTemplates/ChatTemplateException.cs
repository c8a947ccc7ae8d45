namespace LlmServer.ChatTemplates;

/// <summary>
/// A chat template could not be parsed or rendered. When the template itself calls
/// <c>raise_exception(msg)</c> the message is exactly <c>msg</c>, because that text is written for the
/// API caller (for example "Conversation roles must alternate user/assistant/user/assistant/...").
/// </summary>
public sealed class ChatTemplateException : Exception
{
    public ChatTemplateException(string message)
        : base(message)
    {
    }

    internal static ChatTemplateException Syntax(string message, int line) =>
        new($"Chat template syntax error on line {line}: {message}");

    internal static ChatTemplateException Runtime(string message, int line) =>
        new($"Chat template error on line {line}: {message}");
}
