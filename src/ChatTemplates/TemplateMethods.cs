namespace LlmServer.ChatTemplates;

/// <summary>
/// The Python methods templates call on values (<c>content.strip()</c>, <c>message.get('name')</c>),
/// bound to their receiver so that <c>x.strip</c> evaluates to a callable as it does in Python.
/// </summary>
internal static class TemplateMethods
{
    public static bool TryBind(object? receiver, string name, out TemplateFunction method)
    {
        Func<TemplateArguments, object?>? body = receiver switch
        {
            string text => StringMethod(text, name),
            OrderedDictionary<string, object?> dict => DictMethod(dict, name),
            _ => null,
        };
        method = body is null ? null! : new TemplateFunction(name, body);
        return body is not null;
    }

    public static bool IsDictMethod(string name) => name is "items" or "keys" or "values" or "get";

    private static Func<TemplateArguments, object?>? StringMethod(string text, string name) => name switch
    {
        "strip" => args => Strip(text, args, "strip", fromStart: true, fromEnd: true),
        "lstrip" => args => Strip(text, args, "lstrip", fromStart: true, fromEnd: false),
        "rstrip" => args => Strip(text, args, "rstrip", fromStart: false, fromEnd: true),
        "startswith" => args => MatchesAffix(text, args, "startswith", (s, affix) => s.StartsWith(affix, StringComparison.Ordinal)),
        "endswith" => args => MatchesAffix(text, args, "endswith", (s, affix) => s.EndsWith(affix, StringComparison.Ordinal)),
        "split" => args =>
        {
            args.ExpectOnly("split", "sep", "maxsplit");
            return PythonStringMethods.Split(
                text, OptionalString(args.Get(0, "sep", null), "split"), TemplateValue.ToLong(args.Get(1, "maxsplit", -1L)));
        },
        "splitlines" => _ => PythonStringMethods.SplitLines(text).Cast<object?>().ToList(),
        "upper" => NoArguments("upper", () => text.ToUpperInvariant()),
        "lower" => NoArguments("lower", () => text.ToLowerInvariant()),
        "title" => NoArguments("title", () => PythonStringMethods.Title(text)),
        "capitalize" => NoArguments("capitalize", () => PythonStringMethods.Capitalize(text)),
        "isdigit" => NoArguments("isdigit", () => text.Length > 0 && text.All(char.IsDigit)),
        "isalpha" => NoArguments("isalpha", () => text.Length > 0 && text.All(char.IsLetter)),
        "isalnum" => NoArguments("isalnum", () => text.Length > 0 && text.All(char.IsLetterOrDigit)),
        "isspace" => NoArguments("isspace", () => text.Length > 0 && text.All(PythonStringMethods.IsWhitespace)),
        "islower" => NoArguments("islower", () => text.Any(char.IsLower) && !text.Any(char.IsUpper)),
        "isupper" => NoArguments("isupper", () => text.Any(char.IsUpper) && !text.Any(char.IsLower)),
        "replace" => args =>
        {
            args.ExpectOnly("replace", "old", "new", "count");
            return PythonStringMethods.Replace(
                text,
                RequireString(args.Required(0, "old", "replace"), "replace"),
                RequireString(args.Required(1, "new", "replace"), "replace"),
                TemplateValue.ToLong(args.Get(2, "count", -1L)));
        },
        "find" => args =>
        {
            args.ExpectOnly("find", "sub");
            string part = RequireString(args.Required(0, "sub", "find"), "find");
            int found = text.IndexOf(part, StringComparison.Ordinal);
            return found < 0 ? -1L : TemplateValue.Length(text[..found]);
        },
        "count" => args =>
        {
            args.ExpectOnly("count", "sub");
            string part = RequireString(args.Required(0, "sub", "count"), "count");
            return part.Length == 0
                ? TemplateValue.Length(text) + 1
                : (long)((text.Length - text.Replace(part, "", StringComparison.Ordinal).Length) / part.Length);
        },
        "join" => args =>
        {
            args.ExpectOnly("join", "iterable");
            return string.Join(text, TemplateValue.Iterate(args.Required(0, "iterable", "join"))
                .Select(item => RequireString(item, "join")));
        },
        _ => null,
    };

    private static Func<TemplateArguments, object?>? DictMethod(OrderedDictionary<string, object?> dict, string name) => name switch
    {
        "items" => NoArguments("items", () => dict.Select(pair => (object?)new TemplateTuple([pair.Key, pair.Value])).ToList()),
        "keys" => NoArguments("keys", () => dict.Keys.Cast<object?>().ToList()),
        "values" => NoArguments("values", () => dict.Values.ToList()),
        "get" => args =>
        {
            args.ExpectOnly("get", "key", "default");
            object? key = args.Required(0, "key", "get");
            return key is string k && dict.TryGetValue(k, out var value) ? value : args.Get(1, "default", null);
        },
        _ => null,
    };

    private static string Strip(string text, TemplateArguments args, string name, bool fromStart, bool fromEnd)
    {
        args.ExpectOnly(name, "chars");
        return PythonStringMethods.Strip(text, OptionalString(args.Get(0, "chars", null), name), fromStart, fromEnd);
    }

    private static bool MatchesAffix(string text, TemplateArguments args, string name, Func<string, string, bool> matches)
    {
        args.ExpectOnly(name, "prefix");
        return args.Required(0, "prefix", name) switch
        {
            string affix => matches(text, affix),
            // Python accepts a tuple of alternatives: content.startswith(('<think>', '<tool_call>')).
            List<object?> alternatives => alternatives.Any(item => matches(text, RequireString(item, name))),
            var other => throw new TemplateRuntimeException(
                $"{name} first arg must be str or a tuple of str, not {TemplateValue.TypeName(other)}"),
        };
    }

    private static Func<TemplateArguments, object?> NoArguments(string name, Func<object?> body) => args =>
    {
        args.ExpectOnly(name);
        return body();
    };

    private static string? OptionalString(object? value, string callee) =>
        value is null or UndefinedValue ? null : RequireString(value, callee);

    private static string RequireString(object? value, string callee) =>
        value as string ?? throw new TemplateRuntimeException(
            $"{callee}() expected a string, got '{TemplateValue.TypeName(value)}'");
}
