using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// Splits text with a pre-tokenizer regex of a <c>tokenizer.json</c> the way Hugging Face tokenizers
/// (Oniguruma, one code point per character) does, on top of .NET's <see cref="Regex"/>, which sees
/// UTF-16 chars: a character outside the BMP is two surrogate chars there, neither a letter nor a number,
/// so <c>[^\r\n\p{L}\p{N}]?\p{L}+</c> would split an emoji between its surrogates. Text with such
/// characters is matched in a stand-in string where each one is replaced by a single BMP character of
/// the same Unicode category, and the pieces are mapped back to the original text.
/// </summary>
internal sealed class CodePointRegexSplitter
{
    // For each UnicodeCategory, a BMP character outside ASCII of that category (or '\0' if the BMP has none).
    private static readonly char[] StandInByCategory = BuildStandIns();

    private readonly Regex _regex;

    public CodePointRegexSplitter(string pattern)
    {
        _regex = new Regex(pattern, RegexOptions.CultureInvariant | RegexOptions.Compiled);
    }

    /// <summary>
    /// Appends the pieces of <paramref name="text"/> as (start, length) in <paramref name="text"/>'s
    /// chars: each match, and each gap between matches ("Isolated" behaviour).
    /// </summary>
    public void Split(string text, List<(int Start, int Length)> pieces)
    {
        int firstSurrogate = text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF');
        if (firstSurrogate < 0)
        {
            AddPieces(text, pieces, map: null, originalLength: text.Length);
            return;
        }

        // Lone surrogates were replaced by U+FFFD before this point, so every surrogate is half of a pair.
        var standIn = new StringBuilder(text.Length);
        var map = new List<int>(text.Length + 1);
        for (int i = 0; i < text.Length; i++)
        {
            map.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                UnicodeCategory category = CharUnicodeInfo.GetUnicodeCategory(text, i);
                char replacement = StandInByCategory[(int)category];
                standIn.Append(replacement == '\0' ? '\uFFFD' : replacement);
                i++;
            }
            else
            {
                standIn.Append(text[i]);
            }
        }

        map.Add(text.Length);
        AddPieces(standIn.ToString(), pieces, map, text.Length);
    }

    private void AddPieces(string text, List<(int Start, int Length)> pieces, List<int>? map, int originalLength)
    {
        int previousEnd = 0;
        foreach (ValueMatch match in _regex.EnumerateMatches(text))
        {
            if (match.Length == 0)
            {
                continue;
            }

            if (match.Index > previousEnd)
            {
                Add(previousEnd, match.Index);
            }

            Add(match.Index, match.Index + match.Length);
            previousEnd = match.Index + match.Length;
        }

        if (previousEnd < text.Length)
        {
            Add(previousEnd, text.Length);
        }

        void Add(int start, int end)
        {
            int originalStart = map is null ? start : map[start];
            int originalEnd = map is null ? end : (end == text.Length ? originalLength : map[end]);
            pieces.Add((originalStart, originalEnd - originalStart));
        }
    }

    private static char[] BuildStandIns()
    {
        var standIns = new char[32];
        for (int value = 0x80; value <= 0xFFFF; value++)
        {
            if (value is >= 0xD800 and <= 0xDFFF)
            {
                continue;
            }

            var category = CharUnicodeInfo.GetUnicodeCategory((char)value);
            if (standIns[(int)category] == '\0')
            {
                standIns[(int)category] = (char)value;
            }
        }

        return standIns;
    }
}
