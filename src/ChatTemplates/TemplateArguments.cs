namespace LlmServer.ChatTemplates;

/// <summary>
/// Evaluated call arguments with Python's binding rule: a parameter is filled from its position or,
/// failing that, from a keyword of the same name.
/// </summary>
internal sealed class TemplateArguments
{
    public static readonly TemplateArguments None = new([], []);

    public TemplateArguments(IReadOnlyList<object?> positional, IReadOnlyList<KeyValuePair<string, object?>> named)
    {
        Positional = positional;
        Named = named;
    }

    public IReadOnlyList<object?> Positional { get; }

    public IReadOnlyList<KeyValuePair<string, object?>> Named { get; }

    public bool TryGet(int position, string name, out object? value)
    {
        if (position < Positional.Count)
        {
            value = Positional[position];
            return true;
        }

        foreach (var (key, namedValue) in Named)
        {
            if (key == name)
            {
                value = namedValue;
                return true;
            }
        }

        value = null;
        return false;
    }

    public bool TryGetNamed(string name, out object? value) => TryGet(int.MaxValue, name, out value);

    public object? Get(int position, string name, object? fallback) =>
        TryGet(position, name, out var value) ? value : fallback;

    public object? Required(int position, string name, string callee) =>
        TryGet(position, name, out var value)
            ? value
            : throw new TemplateRuntimeException($"{callee}() missing required argument '{name}'");

    /// <summary>
    /// Rejects arguments the callee does not declare; a typo in a template should fail loudly rather
    /// than be ignored and silently change the prompt.
    /// </summary>
    public void ExpectOnly(string callee, params string[] parameterNames)
    {
        if (Positional.Count > parameterNames.Length)
        {
            throw new TemplateRuntimeException(
                $"{callee}() takes at most {parameterNames.Length} argument(s) ({Positional.Count} given)");
        }

        foreach (var (key, _) in Named)
        {
            int index = Array.IndexOf(parameterNames, key);
            if (index < 0)
            {
                throw new TemplateRuntimeException($"{callee}() got an unexpected keyword argument '{key}'");
            }

            if (index < Positional.Count)
            {
                throw new TemplateRuntimeException($"{callee}() got multiple values for argument '{key}'");
            }
        }
    }
}
