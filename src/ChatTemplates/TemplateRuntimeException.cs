namespace LlmServer.ChatTemplates;

/// <summary>
/// A type or value error raised while evaluating an expression. It carries no position: the evaluator
/// catches it at the enclosing statement and rethrows a <see cref="ChatTemplateException"/> that names
/// the template line, so the deep value helpers need not know where they were called from.
/// </summary>
internal sealed class TemplateRuntimeException(string message) : Exception(message);
