namespace LlmServer.ChatTemplates;

/// <summary>
/// <c>x.name</c>, <c>x[key]</c> and <c>x[start:stop:step]</c>. As in Jinja, <c>.name</c> prefers a
/// method and falls back to a dict key while <c>[key]</c> prefers the key; a missing key, attribute or
/// index yields <see cref="UndefinedValue"/> so templates can test optional fields, but looking
/// inside an undefined value is an error.
/// </summary>
internal static class TemplateMemberAccess
{
    public static object? GetAttribute(object? target, string name)
    {
        switch (target)
        {
            case UndefinedValue undefined:
                throw undefined.ToError();
            case OrderedDictionary<string, object?> dict when !TemplateMethods.IsDictMethod(name):
                return dict.TryGetValue(name, out var value) ? value : Missing(target, name);
            case NamespaceValue ns:
                return ns.Attributes.TryGetValue(name, out var attribute) ? attribute : Missing(target, name);
            case LoopContext loop:
                return loop.TryGetAttribute(name, out var loopValue) ? loopValue : Missing(target, name);
            default:
                return TemplateMethods.TryBind(target, name, out var method) ? method : Missing(target, name);
        }
    }

    public static object? GetItem(object? target, object? key)
    {
        switch (target, key)
        {
            case (UndefinedValue undefined, _):
                throw undefined.ToError();
            case (OrderedDictionary<string, object?> dict, string name) when dict.TryGetValue(name, out var value):
                return value;
            case (List<object?> list, long or bool):
                return ElementAt(list, TemplateValue.ToLong(key), target);
            case (string text, long or bool):
                return ElementAt(TemplateValue.CodePoints(text), TemplateValue.ToLong(key), target);
            case (_, string name):
                return GetAttribute(target, name);
            default:
                return new UndefinedValue($"'{TemplateValue.TypeName(target)} object' has no element {TemplateValue.Repr(key)}");
        }
    }

    public static object? Slice(object? target, object? start, object? stop, object? step)
    {
        switch (target)
        {
            case UndefinedValue undefined:
                throw undefined.ToError();
            case List<object?> list:
                return SliceList(list, start, stop, step);
            case string text:
                return string.Concat(SliceList(TemplateValue.CodePoints(text), start, stop, step).Cast<string>());
            default:
                throw new TemplateRuntimeException($"'{TemplateValue.TypeName(target)}' object is not subscriptable");
        }
    }

    private static object? ElementAt(List<object?> items, long index, object? target)
    {
        long resolved = index < 0 ? index + items.Count : index;
        return resolved >= 0 && resolved < items.Count
            ? items[(int)resolved]
            : new UndefinedValue($"{TemplateValue.TypeName(target)} object has no element {index}");
    }

    /// <summary>Python's slice semantics, including clamping and negative steps (<c>[::-1]</c>).</summary>
    private static List<object?> SliceList(List<object?> items, object? start, object? stop, object? step)
    {
        long stepValue = OptionalIndex(step) ?? 1;
        if (stepValue == 0)
        {
            throw new TemplateRuntimeException("slice step cannot be zero");
        }

        long length = items.Count;
        long lower = stepValue > 0 ? 0 : -1;
        long upper = stepValue > 0 ? length : length - 1;
        long from = Clamp(OptionalIndex(start), stepValue > 0 ? lower : upper);
        long to = Clamp(OptionalIndex(stop), stepValue > 0 ? upper : lower);

        var result = new List<object?>();
        for (long i = from; stepValue > 0 ? i < to : i > to; i += stepValue)
        {
            result.Add(items[(int)i]);
        }

        return result;

        long Clamp(long? index, long fallback)
        {
            if (index is not { } value)
            {
                return fallback;
            }

            if (value < 0)
            {
                return Math.Max(value + length, lower);
            }

            return Math.Min(value, upper);
        }
    }

    private static long? OptionalIndex(object? value) => value switch
    {
        null or UndefinedValue => null,
        long or bool => TemplateValue.ToLong(value),
        _ => throw new TemplateRuntimeException("slice indices must be integers or None"),
    };

    private static UndefinedValue Missing(object? target, string name) =>
        new($"'{TemplateValue.TypeName(target)} object' has no attribute '{name}'");
}
