namespace LlmServer.ChatTemplates;

/// <summary>
/// The object returned by <c>namespace(...)</c>. Jinja scopes <c>set</c> to the enclosing loop
/// iteration, so templates use a namespace's mutable attributes to carry state out of a loop
/// (<c>{% set ns.found = true %}</c>).
/// </summary>
internal sealed class NamespaceValue
{
    public OrderedDictionary<string, object?> Attributes { get; } = new(StringComparer.Ordinal);
}
