using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmServer.ChatTemplates;

/// <summary>
/// The meaning of template values. Values are plain CLR objects: <c>null</c> (None), <see cref="bool"/>,
/// <see cref="long"/>, <see cref="double"/>, <see cref="string"/>, <see cref="List{T}"/> of values
/// (lists and tuples), <see cref="OrderedDictionary{TKey,TValue}"/> keyed by string (dicts keep
/// insertion order as in Python), <see cref="UndefinedValue"/>, <see cref="NamespaceValue"/>,
/// <see cref="LoopContext"/> and <see cref="TemplateFunction"/>. The rules follow Python because chat
/// templates are written against Python's Jinja: a prompt that differs by one space or quote from the
/// training format degrades the model.
/// </summary>
internal static class TemplateValue
{
    public static bool IsTruthy(object? value) => value switch
    {
        null or UndefinedValue => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        OrderedDictionary<string, object?> dict => dict.Count > 0,
        _ => true,
    };

    /// <summary>Python's <c>str()</c>, which is what <c>{{ value }}</c> prints.</summary>
    public static string ToText(object? value) => value switch
    {
        string s => s,
        UndefinedValue => "",
        _ => Repr(value),
    };

    /// <summary>Python's <c>repr()</c>, used for values nested inside printed lists and dicts.</summary>
    public static string Repr(object? value) => value switch
    {
        null => "None",
        UndefinedValue => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => PythonFloatFormatter.Format(d),
        string s => QuoteString(s),
        TemplateTuple { Count: 1 } single => "(" + Repr(single[0]) + ",)",
        TemplateTuple tuple => "(" + string.Join(", ", tuple.Select(Repr)) + ")",
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        OrderedDictionary<string, object?> dict =>
            "{" + string.Join(", ", dict.Select(pair => QuoteString(pair.Key) + ": " + Repr(pair.Value))) + "}",
        NamespaceValue ns =>
            "<Namespace " + string.Join(", ", ns.Attributes.Select(pair => pair.Key + "=" + Repr(pair.Value))) + ">",
        TemplateFunction function => $"<function {function.Name}>",
        LoopContext => "<LoopContext>",
        _ => value.ToString() ?? "",
    };

    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        UndefinedValue => "Undefined",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        TemplateTuple => "tuple",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        NamespaceValue => "Namespace",
        LoopContext => "LoopContext",
        TemplateFunction => "function",
        _ => value.GetType().Name,
    };

    public static bool IsNumber(object? value) => value is long or double or bool;

    /// <summary>Python's <c>==</c>: numbers compare by value across int/float/bool, containers deeply.</summary>
    public static bool AreEqual(object? left, object? right)
    {
        if (IsNumber(left) && IsNumber(right))
        {
            return left is double || right is double
                ? ToDouble(left) == ToDouble(right)
                : ToLong(left) == ToLong(right);
        }

        return (left, right) switch
        {
            (null, null) => true,
            (UndefinedValue, UndefinedValue) => true,
            (string a, string b) => string.Equals(a, b, StringComparison.Ordinal),
            (List<object?> a, List<object?> b) => a is TemplateTuple == b is TemplateTuple
                && a.Count == b.Count && a.Zip(b).All(pair => AreEqual(pair.First, pair.Second)),
            (OrderedDictionary<string, object?> a, OrderedDictionary<string, object?> b) =>
                a.Count == b.Count && a.All(pair => b.TryGetValue(pair.Key, out var other) && AreEqual(pair.Value, other)),
            _ => ReferenceEquals(left, right),
        };
    }

    /// <summary>Python's ordering for <c>&lt;</c>, <c>sort</c>, <c>min</c> and <c>max</c>.</summary>
    public static int Compare(object? left, object? right)
    {
        if (IsNumber(left) && IsNumber(right))
        {
            return left is double || right is double
                ? ToDouble(left).CompareTo(ToDouble(right))
                : ToLong(left).CompareTo(ToLong(right));
        }

        switch (left, right)
        {
            case (string a, string b):
                return Math.Sign(string.CompareOrdinal(a, b));
            case (List<object?> a, List<object?> b):
                for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
                {
                    if (!AreEqual(a[i], b[i]))
                    {
                        return Compare(a[i], b[i]);
                    }
                }

                return a.Count.CompareTo(b.Count);
            case (UndefinedValue undefined, _):
                throw undefined.ToError();
            case (_, UndefinedValue undefined):
                throw undefined.ToError();
            default:
                throw new TemplateRuntimeException(
                    $"'<' not supported between instances of '{TypeName(left)}' and '{TypeName(right)}'");
        }
    }

    public static long ToLong(object? value) => value switch
    {
        long l => l,
        bool b => b ? 1 : 0,
        double d => (long)d,
        _ => throw new TemplateRuntimeException($"expected an integer, got '{TypeName(value)}'"),
    };

    public static double ToDouble(object? value) => value switch
    {
        double d => d,
        long l => l,
        bool b => b ? 1 : 0,
        _ => throw new TemplateRuntimeException($"expected a number, got '{TypeName(value)}'"),
    };

    /// <summary>What a <c>for</c> loop visits: list items, dict keys, or the characters of a string.</summary>
    public static IEnumerable<object?> Iterate(object? value) => value switch
    {
        UndefinedValue => [],
        List<object?> list => list,
        OrderedDictionary<string, object?> dict => dict.Keys,
        string s => CodePoints(s),
        _ => throw new TemplateRuntimeException($"'{TypeName(value)}' object is not iterable"),
    };

    /// <summary>Python's <c>len()</c>; strings count code points, as Python does, not UTF-16 units.</summary>
    public static long Length(object? value) => value switch
    {
        UndefinedValue => 0,
        string s => s.EnumerateRunes().Count(),
        List<object?> list => list.Count,
        OrderedDictionary<string, object?> dict => dict.Count,
        _ => throw new TemplateRuntimeException($"object of type '{TypeName(value)}' has no len()"),
    };

    /// <summary>Splits a string into code points so indexing never separates a surrogate pair.</summary>
    public static List<object?> CodePoints(string text)
    {
        var result = new List<object?>(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            result.Add(rune.ToString());
        }

        return result;
    }

    /// <summary>Converts a caller-supplied CLR value (including System.Text.Json trees) into a template value.</summary>
    public static object? FromClr(object? value) => value switch
    {
        null => null,
        string or bool or long or double or UndefinedValue or NamespaceValue or TemplateFunction => value,
        int i => (long)i,
        short s => (long)s,
        byte b => (long)b,
        uint u => (long)u,
        float f => (double)f,
        decimal m => (double)m,
        char c => c.ToString(),
        Enum e => e.ToString(),
        ChatMessage message => MessageToDict(message),
        JsonElement element => FromJson(element),
        JsonNode node => FromJson(JsonSerializer.SerializeToElement(node)),
        OrderedDictionary<string, object?> dict => ConvertDictionary(dict),
        IDictionary<string, object?> dict => ConvertDictionary(dict),
        IReadOnlyDictionary<string, object?> dict => ConvertDictionary(dict),
        IDictionary<string, string> dict => ConvertDictionary(dict.Select(pair => new KeyValuePair<string, object?>(pair.Key, pair.Value))),
        IEnumerable sequence => sequence.Cast<object?>().Select(FromClr).ToList(),
        _ => throw new ArgumentException(
            $"Values of type {value.GetType().Name} cannot be passed to a chat template.", nameof(value)),
    };

    public static OrderedDictionary<string, object?> MessageToDict(ChatMessage message)
    {
        // vLLM's order: role, content, then tool_calls or tool_call_id, then name.
        var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["role"] = message.Role,
            ["content"] = message.Content,
        };
        if (message.ToolCalls is not null)
        {
            dict["tool_calls"] = message.ToolCalls.Select(call => (object?)ToolCallToDict(call)).ToList();
        }
        if (message.ToolCallId is not null)
        {
            dict["tool_call_id"] = message.ToolCallId;
        }
        if (message.Name is not null)
        {
            dict["name"] = message.Name;
        }

        return dict;
    }

    private static OrderedDictionary<string, object?> ToolCallToDict(ChatToolCall call)
    {
        var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        if (call.Id is not null)
        {
            dict["id"] = call.Id;
        }
        dict["type"] = "function";
        dict["function"] = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["name"] = call.Name,
            ["arguments"] = FromJson(call.Arguments),
        };
        return dict;
    }

    private static OrderedDictionary<string, object?> ConvertDictionary(IEnumerable<KeyValuePair<string, object?>> pairs)
    {
        var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, item) in pairs)
        {
            dict[key] = FromClr(item);
        }

        return dict;
    }

    private static object? FromJson(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Object => ConvertDictionary(
            element.EnumerateObject().Select(p => new KeyValuePair<string, object?>(p.Name, FromJson(p.Value)))),
        JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        JsonValueKind.String => element.GetString(),
        // Boxed apart: a ternary of long and double would make every integer a double (tojson's 2 would print 2.0).
        JsonValueKind.Number => element.TryGetInt64(out long l) ? (object)l : element.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => null,
    };

    /// <summary>Python quotes with single quotes unless the text contains one and no double quote.</summary>
    private static string QuoteString(string text)
    {
        char quote = text.Contains('\'') && !text.Contains('"') ? '"' : '\'';
        var builder = new StringBuilder(text.Length + 2).Append(quote);
        foreach (char c in text)
        {
            switch (c)
            {
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                default:
                    if (c == quote)
                    {
                        builder.Append('\\').Append(c);
                    }
                    else if (c < 0x20 || c == 0x7f)
                    {
                        builder.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }

                    break;
            }
        }

        return builder.Append(quote).ToString();
    }
}
