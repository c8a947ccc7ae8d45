using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// GPT-2's pre-tokenization regex, made to behave like Python's <c>regex</c> module on characters
/// outside the Basic Multilingual Plane.
/// </summary>
/// <remarks>
/// OpenAI's pattern is <see cref="OpenAiPattern"/>. .NET regexes match UTF-16 code units, so a
/// letter or digit written as a surrogate pair (𝐀, 𝟘, 𠮷, 𐐀) is not <c>\p{L}</c>/<c>\p{N}</c> but
/// "other" (surrogates are category Cs). Taken literally, "𝐀's" would split as "𝐀'" + "s" instead of
/// "𝐀" + "'s" and give different ids. Here each <c>\p{L}</c> / <c>\p{N}</c> also accepts the surrogate
/// pairs of supplementary letters / numbers, and the "other" class refuses them.
/// </remarks>
internal static class Gpt2SplitPattern
{
    public const string OpenAiPattern =
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    // Same limit Microsoft.ML.Tokenizers gives its own pre-tokenizer regexes.
    private static readonly TimeSpan MatchTimeout = TimeSpan.FromSeconds(30);

    public static Regex Create()
    {
        string astralLetter = SurrogatePairAlternation(IsLetter);
        string astralNumber = SurrogatePairAlternation(IsNumber);
        string letter = $@"(?:\p{{L}}|{astralLetter})";
        string number = $@"(?:\p{{N}}|{astralNumber})";
        // Only a surrogate can start an astral letter or number, so only surrogates pay for the
        // lookahead (running it before every symbol made punctuation several times slower to split).
        string other = $@"(?:[^\s\p{{L}}\p{{N}}\uD800-\uDFFF]|(?!{astralLetter}|{astralNumber})[\uD800-\uDFFF])";
        string pattern = $@"'s|'t|'re|'ve|'m|'ll|'d| ?{letter}+| ?{number}+| ?{other}+|\s+(?!\S)|\s+";
        return new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant, MatchTimeout);
    }

    private static bool IsLetter(UnicodeCategory category) => category is
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
        or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter;

    private static bool IsNumber(UnicodeCategory category) => category is
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;

    /// <summary>
    /// A regex alternation matching exactly the surrogate pairs of supplementary code points whose
    /// category satisfies <paramref name="include"/>, e.g. <c>(?:\uD835[\uDC00-\uDC54\uDC56-\uDC9C]|...)</c>.
    /// </summary>
    private static string SurrogatePairAlternation(Func<UnicodeCategory, bool> include)
    {
        var alternation = new StringBuilder("(?:");
        bool first = true;
        for (int high = 0xD800; high <= 0xDBFF; high++)
        {
            string lowClass = LowSurrogateClass(high, include);
            if (lowClass.Length == 0)
            {
                continue;
            }

            alternation.Append(first ? "" : "|").Append(Escape(high)).Append(lowClass);
            first = false;
        }

        // No supplementary code point qualifies: an alternation that never matches.
        return alternation.Append(first ? "(?!)" : "").Append(')').ToString();
    }

    private static string LowSurrogateClass(int high, Func<UnicodeCategory, bool> include)
    {
        var ranges = new StringBuilder();
        int rangeStart = -1;
        for (int low = 0xDC00; low <= 0xDFFF + 1; low++)
        {
            bool included = low <= 0xDFFF
                && include(Rune.GetUnicodeCategory(new Rune((char)high, (char)low)));
            if (included && rangeStart < 0)
            {
                rangeStart = low;
            }
            else if (!included && rangeStart >= 0)
            {
                ranges.Append(Escape(rangeStart));
                if (low - 1 > rangeStart)
                {
                    ranges.Append('-').Append(Escape(low - 1));
                }

                rangeStart = -1;
            }
        }

        return ranges.Length == 0 ? "" : $"[{ranges}]";
    }

    private static string Escape(int codeUnit) => $@"\u{codeUnit:X4}";
}
