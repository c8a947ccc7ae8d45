namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// What a request's output is held to: the text of <see cref="Grammar"/>'s documents. With no
/// <see cref="Trigger"/> every token is constrained from the first; with one, the output is free until it contains
/// the trigger, and from the trigger's first byte on it must follow the grammar (whose text starts with the trigger):
/// a tool call under <c>tool_choice</c> "auto" is optional, but once begun it is valid. End of sequence is allowed
/// only where the grammar's document can end.
/// </summary>
public sealed record GrammarConstraint(JsonGrammar Grammar, string? Trigger = null);
