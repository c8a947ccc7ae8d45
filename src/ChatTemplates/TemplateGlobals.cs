namespace LlmServer.ChatTemplates;

/// <summary>
/// Functions every template can call: Jinja's <c>range</c>, <c>namespace</c> and <c>dict</c>, and the
/// <c>raise_exception</c> and <c>strftime_now</c> that Hugging Face adds.
/// </summary>
internal static class TemplateGlobals
{
    // Jinja's sandbox caps range() at this size; keeping the cap stops a template from exhausting memory.
    private const long MaxRangeLength = 100_000;

    public static void AddTo(TemplateScope scope)
    {
        scope.Set("range", new TemplateFunction("range", Range));
        scope.Set("namespace", new TemplateFunction("namespace", Namespace));
        scope.Set("dict", new TemplateFunction("dict", Dict));
        scope.Set("raise_exception", new TemplateFunction("raise_exception", RaiseException));
        scope.Set("strftime_now", new TemplateFunction("strftime_now", StrftimeNow));
    }

    private static object? Range(TemplateArguments args)
    {
        if (args.Named.Count > 0 || args.Positional.Count is 0 or > 3)
        {
            throw new TemplateRuntimeException("range() expects 1 to 3 positional arguments");
        }

        var numbers = args.Positional.Select(TemplateValue.ToLong).ToList();
        long start = numbers.Count == 1 ? 0 : numbers[0];
        long stop = numbers.Count == 1 ? numbers[0] : numbers[1];
        long step = numbers.Count == 3 ? numbers[2] : 1;
        if (step == 0)
        {
            throw new TemplateRuntimeException("range() arg 3 must not be zero");
        }

        long length = step > 0 ? (stop - start + step - 1) / step : (start - stop - step - 1) / -step;
        if (length > MaxRangeLength)
        {
            throw new TemplateRuntimeException($"range() is limited to {MaxRangeLength} items");
        }

        var result = new List<object?>((int)Math.Max(0, length));
        for (long i = 0; i < length; i++)
        {
            result.Add(start + (i * step));
        }

        return result;
    }

    private static object? Namespace(TemplateArguments args)
    {
        var ns = new NamespaceValue();
        foreach (var initial in args.Positional)
        {
            if (initial is not OrderedDictionary<string, object?> dict)
            {
                throw new TemplateRuntimeException("namespace() only accepts a dict as a positional argument");
            }

            foreach (var (key, value) in dict)
            {
                ns.Attributes[key] = value;
            }
        }

        foreach (var (key, value) in args.Named)
        {
            ns.Attributes[key] = value;
        }

        return ns;
    }

    private static object? Dict(TemplateArguments args)
    {
        var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var initial in args.Positional)
        {
            foreach (var (key, value) in initial as OrderedDictionary<string, object?>
                         ?? throw new TemplateRuntimeException("dict() only accepts a dict as a positional argument"))
            {
                dict[key] = value;
            }
        }

        foreach (var (key, value) in args.Named)
        {
            dict[key] = value;
        }

        return dict;
    }

    /// <summary>
    /// Templates call this to reject a conversation they cannot format; the message is meant for the
    /// API caller, so it is passed through unchanged rather than wrapped as a template error.
    /// </summary>
    private static object? RaiseException(TemplateArguments args) =>
        throw new ChatTemplateException(TemplateValue.ToText(args.Get(0, "message", "")));

    private static object? StrftimeNow(TemplateArguments args)
    {
        args.ExpectOnly("strftime_now", "format");
        string format = args.Required(0, "format", "strftime_now") as string
            ?? throw new TemplateRuntimeException("strftime_now() expects a format string");
        return PythonStrftime.Format(DateTime.Now, format);
    }
}
