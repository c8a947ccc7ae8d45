using System.Globalization;
using System.Text;

namespace LlmServer.ChatTemplates;

/// <summary>
/// The <c>tojson</c> filter as Hugging Face defines it: Python's <c>json.dumps</c> with
/// <c>ensure_ascii=False</c>. Its layout (<c>", "</c> and <c>": "</c> separators, key order kept,
/// no HTML escaping) differs from System.Text.Json, and tool definitions rendered into the prompt
/// must match what the model was trained on.
/// </summary>
internal static class PythonJsonSerializer
{
    public sealed record Options(int? Indent, bool EnsureAscii, bool SortKeys, string? ItemSeparator, string? KeySeparator);

    public static string Serialize(object? value, Options options)
    {
        var builder = new StringBuilder();
        // Python switches the item separator to a bare comma when indenting, so lines carry no trailing space.
        string itemSeparator = options.ItemSeparator ?? (options.Indent is null ? ", " : ",");
        string keySeparator = options.KeySeparator ?? ": ";
        Write(builder, value, options, itemSeparator, keySeparator, depth: 0);
        return builder.ToString();
    }

    private static void Write(StringBuilder builder, object? value, Options options, string itemSeparator, string keySeparator, int depth)
    {
        switch (value)
        {
            case null:
                builder.Append("null");
                break;
            case bool b:
                builder.Append(b ? "true" : "false");
                break;
            case long l:
                builder.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                builder.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : PythonFloatFormatter.Format(d));
                break;
            case string s:
                WriteString(builder, s, options.EnsureAscii);
                break;
            case List<object?> list:
                WriteContainer(builder, '[', ']', list, options, itemSeparator, depth, (item, d) =>
                    Write(builder, item, options, itemSeparator, keySeparator, d));
                break;
            case OrderedDictionary<string, object?> dict:
                IEnumerable<KeyValuePair<string, object?>> pairs = options.SortKeys
                    ? dict.OrderBy(pair => pair.Key, StringComparer.Ordinal)
                    : dict;
                WriteContainer(builder, '{', '}', pairs.ToList(), options, itemSeparator, depth, (pair, d) =>
                {
                    WriteString(builder, pair.Key, options.EnsureAscii);
                    builder.Append(keySeparator);
                    Write(builder, pair.Value, options, itemSeparator, keySeparator, d);
                });
                break;
            default:
                throw new TemplateRuntimeException($"Object of type {TemplateValue.TypeName(value)} is not JSON serializable");
        }
    }

    private static void WriteContainer<T>(
        StringBuilder builder, char open, char close, IReadOnlyList<T> items, Options options, string itemSeparator, int depth,
        Action<T, int> writeItem)
    {
        builder.Append(open);
        if (items.Count == 0)
        {
            builder.Append(close);
            return;
        }

        for (int i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                builder.Append(itemSeparator);
            }

            NewLine(builder, options, depth + 1);
            writeItem(items[i], depth + 1);
        }

        NewLine(builder, options, depth);
        builder.Append(close);
    }

    private static void NewLine(StringBuilder builder, Options options, int depth)
    {
        if (options.Indent is { } indent)
        {
            builder.Append('\n').Append(' ', indent * depth);
        }
    }

    private static void WriteString(StringBuilder builder, string text, bool ensureAscii)
    {
        builder.Append('"');
        foreach (char c in text)
        {
            switch (c)
            {
                case '"': builder.Append("\\\""); break;
                case '\\': builder.Append("\\\\"); break;
                case '\n': builder.Append("\\n"); break;
                case '\r': builder.Append("\\r"); break;
                case '\t': builder.Append("\\t"); break;
                case '\b': builder.Append("\\b"); break;
                case '\f': builder.Append("\\f"); break;
                default:
                    // Surrogate halves are escaped one by one, which is exactly Python's \ud83d\ude00 form.
                    if (c < 0x20 || (ensureAscii && c > 0x7e))
                    {
                        builder.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        builder.Append(c);
                    }

                    break;
            }
        }

        builder.Append('"');
    }
}
