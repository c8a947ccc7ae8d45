using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LlmServer.ChatTemplates;

/// <summary>
/// Jinja's built-in filters (<c>value | name(args)</c>) that chat templates use, plus Hugging Face's
/// <c>tojson</c>. Each follows Jinja's Python implementation, quirks included, because the output
/// becomes model input.
/// </summary>
internal static partial class TemplateFilters
{
    private static readonly Dictionary<string, Func<object?, TemplateArguments, object?>> Filters = new(StringComparer.Ordinal)
    {
        ["abs"] = Abs,
        ["attr"] = (value, args) => TemplateMemberAccess.GetAttribute(value, RequireString(args.Required(0, "name", "attr"), "attr")),
        ["capitalize"] = (value, _) => PythonStringMethods.Capitalize(TemplateValue.ToText(value)),
        ["count"] = (value, _) => TemplateValue.Length(value),
        ["d"] = Default,
        ["default"] = Default,
        ["dictsort"] = DictSort,
        ["e"] = (value, _) => Escape(value),
        ["escape"] = (value, _) => Escape(value),
        ["first"] = (value, _) => TemplateValue.Iterate(value).DefaultIfEmpty(EmptySequence()).First(),
        ["float"] = ToFloat,
        ["indent"] = Indent,
        ["int"] = ToInt,
        ["items"] = Items,
        ["join"] = Join,
        ["last"] = (value, _) => TemplateValue.Iterate(value).DefaultIfEmpty(EmptySequence()).Last(),
        ["length"] = (value, _) => TemplateValue.Length(value),
        ["list"] = (value, _) => TemplateValue.Iterate(value).ToList(),
        ["lower"] = (value, _) => TemplateValue.ToText(value).ToLowerInvariant(),
        ["map"] = Map,
        ["max"] = (value, args) => Extreme(value, args, "max", pickLarger: true),
        ["min"] = (value, args) => Extreme(value, args, "min", pickLarger: false),
        ["reject"] = (value, args) => SelectByTest(value, args, keep: false),
        ["rejectattr"] = (value, args) => SelectByAttribute(value, args, keep: false),
        ["replace"] = Replace,
        ["reverse"] = Reverse,
        ["round"] = Round,
        ["safe"] = (value, _) => value,
        ["select"] = (value, args) => SelectByTest(value, args, keep: true),
        ["selectattr"] = (value, args) => SelectByAttribute(value, args, keep: true),
        ["sort"] = Sort,
        ["string"] = (value, _) => TemplateValue.ToText(value),
        ["sum"] = Sum,
        ["title"] = (value, _) => Title(TemplateValue.ToText(value)),
        ["tojson"] = ToJson,
        ["trim"] = Trim,
        ["unique"] = Unique,
        ["upper"] = (value, _) => TemplateValue.ToText(value).ToUpperInvariant(),
        ["wordcount"] = (value, _) => (long)WordPattern().Count(TemplateValue.ToText(value)),
    };

    public static bool Exists(string name) => Filters.ContainsKey(name);

    public static object? Apply(string name, object? value, TemplateArguments arguments) =>
        Filters.TryGetValue(name, out var filter)
            ? filter(value, arguments)
            : throw new TemplateRuntimeException($"No filter named '{name}'");

    private static object? Abs(object? value, TemplateArguments args) => value switch
    {
        long l => (object)checked(Math.Abs(l)),
        bool b => b ? 1L : 0L,
        double d => Math.Abs(d),
        _ => throw new TemplateRuntimeException($"bad operand type for abs(): '{TemplateValue.TypeName(value)}'"),
    };

    // `default` replaces only undefined values unless `boolean=true`, so an explicit empty string survives.
    private static object? Default(object? value, TemplateArguments args)
    {
        args.ExpectOnly("default", "default_value", "boolean");
        bool replaceFalsy = TemplateValue.IsTruthy(args.Get(1, "boolean", false));
        bool replace = value is UndefinedValue || (replaceFalsy && !TemplateValue.IsTruthy(value));
        return replace ? args.Get(0, "default_value", "") : value;
    }

    private static object? DictSort(object? value, TemplateArguments args)
    {
        args.ExpectOnly("dictsort", "case_sensitive", "by", "reverse");
        if (value is not OrderedDictionary<string, object?> dict)
        {
            throw new TemplateRuntimeException("dictsort expects a dict");
        }

        bool caseSensitive = TemplateValue.IsTruthy(args.Get(0, "case_sensitive", false));
        int position = args.Get(1, "by", "key") switch
        {
            "key" => 0,
            "value" => 1,
            _ => throw new TemplateRuntimeException("You can only sort by either 'key' or 'value'"),
        };
        var pairs = dict.Select(pair => new TemplateTuple([pair.Key, pair.Value]));
        var sorted = SortStable(pairs, pair => SortKey(pair[position], caseSensitive));
        if (TemplateValue.IsTruthy(args.Get(2, "reverse", false)))
        {
            sorted.Reverse();
        }

        return sorted.Cast<object?>().ToList();
    }

    /// <summary>MarkupSafe's escaping, which is what Jinja's <c>escape</c> filter produces.</summary>
    private static string Escape(object? value) => TemplateValue.ToText(value)
        .Replace("&", "&amp;", StringComparison.Ordinal)
        .Replace("<", "&lt;", StringComparison.Ordinal)
        .Replace(">", "&gt;", StringComparison.Ordinal)
        .Replace("\"", "&#34;", StringComparison.Ordinal)
        .Replace("'", "&#39;", StringComparison.Ordinal);

    private static object? ToFloat(object? value, TemplateArguments args)
    {
        args.ExpectOnly("float", "default");
        return value switch
        {
            double d => d,
            long or bool => TemplateValue.ToDouble(value),
            string s when TryParseFloat(s, out double parsed) => parsed,
            _ => args.Get(0, "default", 0.0),
        };
    }

    // Jinja tries int(value, base) and then int(float(value)), so "3.7" | int is 3.
    private static object? ToInt(object? value, TemplateArguments args)
    {
        args.ExpectOnly("int", "default", "base");
        object? fallback = args.Get(0, "default", 0L);
        int numberBase = (int)TemplateValue.ToLong(args.Get(1, "base", 10L));
        switch (value)
        {
            case long or bool:
                return TemplateValue.ToLong(value);
            case double d:
                return double.IsFinite(d) ? (long)Math.Truncate(d) : fallback;
            case string s:
                string digits = s.Trim().Replace("_", "", StringComparison.Ordinal);
                if (numberBase == 10 && long.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long parsed))
                {
                    return parsed;
                }

                if (numberBase is 2 or 8 or 16 && TryParseInBase(digits, numberBase, out long based))
                {
                    return based;
                }

                return TryParseFloat(s, out double asFloat) && double.IsFinite(asFloat) ? (long)Math.Truncate(asFloat) : fallback;
            default:
                return fallback;
        }
    }

    private static object? Indent(object? value, TemplateArguments args)
    {
        args.ExpectOnly("indent", "width", "first", "blank");
        object? width = args.Get(0, "width", 4L);
        string indentation = width as string ?? new string(' ', (int)Math.Max(0, TemplateValue.ToLong(width)));
        bool indentFirst = TemplateValue.IsTruthy(args.Get(1, "first", false));
        bool indentBlank = TemplateValue.IsTruthy(args.Get(2, "blank", false));

        // Jinja appends a newline before splitting, so a trailing newline in the input is dropped.
        var lines = PythonStringMethods.SplitLines(TemplateValue.ToText(value) + "\n");
        string result;
        if (indentBlank)
        {
            result = string.Join("\n" + indentation, lines);
        }
        else
        {
            result = lines.Count == 0 ? "" : lines[0];
            if (lines.Count > 1)
            {
                result += "\n" + string.Join("\n", lines.Skip(1).Select(line => line.Length > 0 ? indentation + line : line));
            }
        }

        return indentFirst ? indentation + result : result;
    }

    private static object? Items(object? value, TemplateArguments args) => value switch
    {
        UndefinedValue => new List<object?>(),
        OrderedDictionary<string, object?> dict => dict.Select(pair => (object?)new TemplateTuple([pair.Key, pair.Value])).ToList(),
        _ => throw new TemplateRuntimeException($"Can only get item pairs from a mapping, not '{TemplateValue.TypeName(value)}'"),
    };

    private static object? Join(object? value, TemplateArguments args)
    {
        args.ExpectOnly("join", "d", "attribute");
        string separator = TemplateValue.ToText(args.Get(0, "d", ""));
        var items = TemplateValue.Iterate(value);
        if (args.Get(1, "attribute", null) is { } attribute)
        {
            items = items.Select(AttributeGetter(attribute, null));
        }

        return string.Join(separator, items.Select(TemplateValue.ToText));
    }

    // `map(attribute='name')` projects an attribute; `map('upper')` applies another filter to each item.
    private static object? Map(object? value, TemplateArguments args)
    {
        var items = TemplateValue.Iterate(value);
        if (args.TryGetNamed("attribute", out var attribute))
        {
            args.TryGetNamed("default", out var fallback);
            return items.Select(AttributeGetter(attribute, fallback)).ToList();
        }

        string filterName = RequireString(args.Required(0, "filter", "map"), "map");
        var rest = new TemplateArguments(args.Positional.Skip(1).ToList(), args.Named);
        return items.Select(item => Apply(filterName, item, rest)).ToList();
    }

    private static object? Extreme(object? value, TemplateArguments args, string name, bool pickLarger)
    {
        args.ExpectOnly(name, "case_sensitive", "attribute");
        bool caseSensitive = TemplateValue.IsTruthy(args.Get(0, "case_sensitive", false));
        var select = args.Get(1, "attribute", null) is { } attribute ? AttributeGetter(attribute, null) : item => item;

        object? best = null;
        object? bestKey = null;
        bool any = false;
        foreach (var item in TemplateValue.Iterate(value))
        {
            object? key = SortKey(select(item), caseSensitive);
            int order = any ? TemplateValue.Compare(key, bestKey) : 0;
            if (!any || (pickLarger ? order > 0 : order < 0))
            {
                (best, bestKey, any) = (item, key, true);
            }
        }

        return any ? best : new UndefinedValue("No aggregated item, sequence was empty.");
    }

    private static object? SelectByTest(object? value, TemplateArguments args, bool keep)
    {
        Func<object?, bool> test = item => TemplateValue.IsTruthy(item);
        if (args.Positional.Count > 0)
        {
            string testName = RequireString(args.Positional[0], "select");
            var rest = new TemplateArguments(args.Positional.Skip(1).ToList(), args.Named);
            test = item => TemplateTestPredicates.Evaluate(testName, item, rest);
        }

        return TemplateValue.Iterate(value).Where(item => test(item) == keep).ToList();
    }

    private static object? SelectByAttribute(object? value, TemplateArguments args, bool keep)
    {
        var getAttribute = AttributeGetter(args.Required(0, "attribute", "selectattr"), null);
        Func<object?, bool> test = item => TemplateValue.IsTruthy(item);
        if (args.Positional.Count > 1)
        {
            string testName = RequireString(args.Positional[1], "selectattr");
            var rest = new TemplateArguments(args.Positional.Skip(2).ToList(), args.Named);
            test = item => TemplateTestPredicates.Evaluate(testName, item, rest);
        }

        return TemplateValue.Iterate(value).Where(item => test(getAttribute(item)) == keep).ToList();
    }

    private static object? Replace(object? value, TemplateArguments args)
    {
        args.ExpectOnly("replace", "old", "new", "count");
        object? count = args.Get(2, "count", null);
        return PythonStringMethods.Replace(
            TemplateValue.ToText(value),
            TemplateValue.ToText(args.Required(0, "old", "replace")),
            TemplateValue.ToText(args.Required(1, "new", "replace")),
            count is null ? -1 : TemplateValue.ToLong(count));
    }

    private static object? Reverse(object? value, TemplateArguments args) => value switch
    {
        string s => string.Concat(TemplateValue.CodePoints(s).Cast<string>().Reverse()),
        _ => TemplateValue.Iterate(value).Reverse().ToList(),
    };

    private static object? Round(object? value, TemplateArguments args)
    {
        args.ExpectOnly("round", "precision", "method");
        int precision = (int)TemplateValue.ToLong(args.Get(0, "precision", 0L));
        string method = TemplateValue.ToText(args.Get(1, "method", "common"));
        if (method == "common" && value is long or bool && precision >= 0)
        {
            // Python's round() keeps integers as integers.
            return TemplateValue.ToLong(value);
        }

        double number = TemplateValue.ToDouble(value);
        double scale = Math.Pow(10, precision);
        return method switch
        {
            "common" => Math.Round(number * scale, MidpointRounding.ToEven) / scale,
            "ceil" => Math.Ceiling(number * scale) / scale,
            "floor" => Math.Floor(number * scale) / scale,
            _ => throw new TemplateRuntimeException("method must be 'common', 'ceil' or 'floor'"),
        };
    }

    private static object? Sort(object? value, TemplateArguments args)
    {
        args.ExpectOnly("sort", "reverse", "case_sensitive", "attribute");
        bool caseSensitive = TemplateValue.IsTruthy(args.Get(1, "case_sensitive", false));
        var select = args.Get(2, "attribute", null) is { } attribute ? AttributeGetter(attribute, null) : item => item;
        var sorted = SortStable(TemplateValue.Iterate(value), item => SortKey(select(item), caseSensitive));
        if (TemplateValue.IsTruthy(args.Get(0, "reverse", false)))
        {
            sorted.Reverse();
        }

        return sorted;
    }

    private static object? Sum(object? value, TemplateArguments args)
    {
        args.ExpectOnly("sum", "attribute", "start");
        var select = args.Get(0, "attribute", null) is { } attribute ? AttributeGetter(attribute, null) : item => item;
        object? total = args.Get(1, "start", 0L);
        foreach (var item in TemplateValue.Iterate(value))
        {
            total = TemplateOperators.Apply(BinaryOperator.Add, total, select(item));
        }

        return total;
    }

    // Jinja's title filter starts a word after whitespace, '-', or an opening bracket; Python's str.title differs.
    private static string Title(string text) => string.Concat(
        WordBeginningSplitPattern().Split(text)
            .Where(part => part.Length > 0)
            .Select(part => char.ToUpperInvariant(part[0]) + part[1..].ToLowerInvariant()));

    private static object? ToJson(object? value, TemplateArguments args)
    {
        args.ExpectOnly("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
        // Hugging Face's signature, not Jinja's: the first positional argument is ensure_ascii.
        object? indent = args.Get(1, "indent", null);
        string? itemSeparator = null;
        string? keySeparator = null;
        if (args.Get(2, "separators", null) is List<object?> { Count: 2 } separators)
        {
            itemSeparator = TemplateValue.ToText(separators[0]);
            keySeparator = TemplateValue.ToText(separators[1]);
        }

        var options = new PythonJsonSerializer.Options(
            indent is null ? null : (int)Math.Clamp(TemplateValue.ToLong(indent), 0, 64),
            TemplateValue.IsTruthy(args.Get(0, "ensure_ascii", false)),
            TemplateValue.IsTruthy(args.Get(3, "sort_keys", false)),
            itemSeparator,
            keySeparator);
        return PythonJsonSerializer.Serialize(value, options);
    }

    private static object? Trim(object? value, TemplateArguments args)
    {
        args.ExpectOnly("trim", "chars");
        object? characters = args.Get(0, "chars", null);
        return PythonStringMethods.Strip(
            TemplateValue.ToText(value), characters is null ? null : TemplateValue.ToText(characters), fromStart: true, fromEnd: true);
    }

    private static object? Unique(object? value, TemplateArguments args)
    {
        args.ExpectOnly("unique", "case_sensitive", "attribute");
        bool caseSensitive = TemplateValue.IsTruthy(args.Get(0, "case_sensitive", false));
        var select = args.Get(1, "attribute", null) is { } attribute ? AttributeGetter(attribute, null) : item => item;
        var seen = new List<object?>();
        var result = new List<object?>();
        foreach (var item in TemplateValue.Iterate(value))
        {
            object? key = SortKey(select(item), caseSensitive);
            if (!seen.Any(existing => TemplateValue.AreEqual(existing, key)))
            {
                seen.Add(key);
                result.Add(item);
            }
        }

        return result;
    }

    /// <summary>Jinja's attribute getter: dotted paths, with integer parts used as indexes (<c>"args.0"</c>).</summary>
    private static Func<object?, object?> AttributeGetter(object? attribute, object? fallback)
    {
        var parts = attribute is string path
            ? path.Split('.').Select(part => long.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out long index) ? (object?)index : part).ToList()
            : [attribute];
        return item =>
        {
            foreach (var part in parts)
            {
                item = TemplateMemberAccess.GetItem(item, part);
            }

            return item is UndefinedValue && fallback is not null ? fallback : item;
        };
    }

    private static object? SortKey(object? value, bool caseSensitive) =>
        !caseSensitive && value is string text ? text.ToLowerInvariant() : value;

    private static List<T> SortStable<T>(IEnumerable<T> items, Func<T, object?> key) =>
        items.OrderBy(key, Comparer<object?>.Create(TemplateValue.Compare)).ToList();

    private static bool TryParseFloat(string text, out double value) =>
        double.TryParse(text.Trim().Replace("_", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out value);

    private static bool TryParseInBase(string digits, int numberBase, out long value)
    {
        try
        {
            string prefix = numberBase switch { 2 => "0b", 8 => "0o", _ => "0x" };
            if (digits.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
            {
                digits = digits[2..];
            }

            value = Convert.ToInt64(digits, numberBase);
            return true;
        }
        catch (Exception e) when (e is FormatException or OverflowException or ArgumentException)
        {
            value = 0;
            return false;
        }
    }

    private static UndefinedValue EmptySequence() => new("No item, sequence was empty.");

    private static string RequireString(object? value, string callee) =>
        value as string ?? throw new TemplateRuntimeException($"{callee} expected a string, got '{TemplateValue.TypeName(value)}'");

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordPattern();

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginningSplitPattern();
}
