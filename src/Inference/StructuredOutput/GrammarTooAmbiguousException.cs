namespace LlmServer.Inference.StructuredOutput;

/// <summary>A grammar whose alternatives overlap so much that following them would cost without bound.</summary>
public sealed class GrammarTooAmbiguousException(string message) : Exception(message);
