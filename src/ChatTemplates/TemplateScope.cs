namespace LlmServer.ChatTemplates;

/// <summary>
/// Variables visible at one point of rendering. Each loop iteration and macro call gets a child scope:
/// Jinja discards a <c>set</c> made inside a loop when the iteration ends, and templates rely on that.
/// </summary>
internal sealed class TemplateScope
{
    private readonly Dictionary<string, object?> _variables = new(StringComparer.Ordinal);
    private readonly TemplateScope? _parent;

    public TemplateScope(TemplateScope? parent = null)
    {
        _parent = parent;
    }

    public bool TryGet(string name, out object? value)
    {
        for (var scope = this; scope is not null; scope = scope._parent)
        {
            if (scope._variables.TryGetValue(name, out value))
            {
                return true;
            }
        }

        value = null;
        return false;
    }

    public void Set(string name, object? value) => _variables[name] = value;

    public TemplateScope CreateChild() => new(this);
}
