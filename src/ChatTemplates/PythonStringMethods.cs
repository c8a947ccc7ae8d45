using System.Text;

namespace LlmServer.ChatTemplates;

/// <summary>
/// Python <c>str</c> behaviour that .NET does not match exactly (whitespace set, <c>split()</c> with
/// no separator, <c>title()</c>, <c>replace</c> with a count). Shared by string methods and filters.
/// </summary>
internal static class PythonStringMethods
{
    // Python's str.isspace() also counts the ASCII file/group/record/unit separators.
    public static bool IsWhitespace(char c) => char.IsWhiteSpace(c) || c is >= '\x1c' and <= '\x1f';

    public static string Strip(string text, string? characters, bool fromStart, bool fromEnd)
    {
        Func<char, bool> strippable = characters is null ? IsWhitespace : characters.Contains;
        int start = 0;
        int end = text.Length;
        while (fromStart && start < end && strippable(text[start]))
        {
            start++;
        }

        while (fromEnd && end > start && strippable(text[end - 1]))
        {
            end--;
        }

        return text[start..end];
    }

    public static List<object?> Split(string text, string? separator, long maxSplit)
    {
        if (separator is null)
        {
            return SplitOnWhitespace(text, maxSplit);
        }

        if (separator.Length == 0)
        {
            throw new TemplateRuntimeException("empty separator");
        }

        int count = maxSplit < 0 || maxSplit >= int.MaxValue ? int.MaxValue : (int)maxSplit + 1;
        return text.Split(separator, count).Cast<object?>().ToList();
    }

    public static string Title(string text)
    {
        var builder = new StringBuilder(text.Length);
        bool previousIsCased = false;
        foreach (char c in text)
        {
            builder.Append(previousIsCased ? char.ToLowerInvariant(c) : char.ToUpperInvariant(c));
            previousIsCased = char.IsUpper(c) || char.IsLower(c);
        }

        return builder.ToString();
    }

    public static string Capitalize(string text) =>
        text.Length == 0 ? text : char.ToUpperInvariant(text[0]) + text[1..].ToLowerInvariant();

    public static string Replace(string text, string oldValue, string newValue, long count)
    {
        if (count < 0)
        {
            count = long.MaxValue;
        }

        var builder = new StringBuilder();
        if (oldValue.Length == 0)
        {
            // Python inserts the replacement before every character and at the end.
            for (int i = 0; i <= text.Length; i++)
            {
                if (count-- > 0)
                {
                    builder.Append(newValue);
                }

                if (i < text.Length)
                {
                    builder.Append(text[i]);
                }
            }

            return builder.ToString();
        }

        int position = 0;
        while (count-- > 0)
        {
            int found = text.IndexOf(oldValue, position, StringComparison.Ordinal);
            if (found < 0)
            {
                break;
            }

            builder.Append(text, position, found - position).Append(newValue);
            position = found + oldValue.Length;
        }

        return builder.Append(text, position, text.Length - position).ToString();
    }

    public static List<string> SplitLines(string text)
    {
        var lines = text.Replace("\r\n", "\n").Replace('\r', '\n').Split('\n').ToList();
        if (lines.Count > 0 && lines[^1].Length == 0)
        {
            lines.RemoveAt(lines.Count - 1);
        }

        return lines;
    }

    private static List<object?> SplitOnWhitespace(string text, long maxSplit)
    {
        var parts = new List<object?>();
        int i = 0;
        while (true)
        {
            while (i < text.Length && IsWhitespace(text[i]))
            {
                i++;
            }

            if (i >= text.Length)
            {
                return parts;
            }

            if (maxSplit >= 0 && parts.Count == maxSplit)
            {
                parts.Add(text[i..]);
                return parts;
            }

            int start = i;
            while (i < text.Length && !IsWhitespace(text[i]))
            {
                i++;
            }

            parts.Add(text[start..i]);
        }
    }
}
