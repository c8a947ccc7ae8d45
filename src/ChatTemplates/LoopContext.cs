namespace LlmServer.ChatTemplates;

/// <summary>The <c>loop</c> variable available inside a <c>{% for %}</c> body.</summary>
internal sealed class LoopContext(IReadOnlyList<object?> items, int index0)
{
    public bool TryGetAttribute(string name, out object? value)
    {
        int length = items.Count;
        switch (name)
        {
            case "index0": value = (long)index0; return true;
            case "index": value = (long)(index0 + 1); return true;
            case "revindex0": value = (long)(length - index0 - 1); return true;
            case "revindex": value = (long)(length - index0); return true;
            case "first": value = index0 == 0; return true;
            case "last": value = index0 == length - 1; return true;
            case "length": value = (long)length; return true;
            case "previtem":
                value = index0 > 0 ? items[index0 - 1] : new UndefinedValue("there is no previous item");
                return true;
            case "nextitem":
                value = index0 < length - 1 ? items[index0 + 1] : new UndefinedValue("there is no next item");
                return true;
            // Recursive loops are not supported, so every loop is at the top level.
            case "depth": value = 1L; return true;
            case "depth0": value = 0L; return true;
            case "cycle": value = new TemplateFunction("loop.cycle", Cycle); return true;
            default: value = null; return false;
        }
    }

    private object? Cycle(TemplateArguments arguments)
    {
        if (arguments.Positional.Count == 0)
        {
            throw new TemplateRuntimeException("loop.cycle() requires at least one argument");
        }

        return arguments.Positional[index0 % arguments.Positional.Count];
    }
}
