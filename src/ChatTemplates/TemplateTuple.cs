namespace LlmServer.ChatTemplates;

/// <summary>
/// A Python tuple: <c>(a, b)</c>, the pairs from <c>dict.items()</c>. It behaves like a list except
/// that it prints as <c>('a', 1)</c> and never equals a list, as in Python.
/// </summary>
internal sealed class TemplateTuple : List<object?>
{
    public TemplateTuple(IEnumerable<object?> items)
        : base(items)
    {
    }
}
