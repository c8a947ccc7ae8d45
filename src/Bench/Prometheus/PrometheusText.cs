using System.Globalization;
using System.Text;

namespace LlmServer.Bench.Prometheus;

/// <summary>
/// Reads Prometheus' text exposition format (version 0.0.4, what /metrics serves by default) into
/// samples. A sample line is <c>name</c>, optional <c>{labels}</c> whose quoted values may hold
/// spaces, commas, braces and the escapes <c>\\</c>, <c>\"</c> and <c>\n</c>, a value (a float,
/// <c>NaN</c>, <c>+Inf</c> or <c>-Inf</c>) and an optional integer timestamp in milliseconds.
/// Blank lines and comments (<c># HELP</c>, <c># TYPE</c>, <c># EOF</c>) are skipped. Reading the
/// last word of a line as the value is wrong as soon as a timestamp follows it.
/// </summary>
public static class PrometheusText
{
    /// <exception cref="FormatException">A line is not a sample; the message names the line and what is wrong.</exception>
    public static IReadOnlyList<PrometheusSample> Parse(string text)
    {
        var samples = new List<PrometheusSample>();
        string[] lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            string content = line.TrimStart(' ', '\t');
            if (content.Length == 0 || content[0] == '#')
            {
                continue;
            }
            try
            {
                samples.Add(new SampleReader(line).Read());
            }
            catch (FormatException problem)
            {
                throw new FormatException($"Prometheus text, line {i + 1}: {problem.Message}: {line}");
            }
        }
        return samples;
    }

    /// <summary>A cursor over one sample line.</summary>
    private ref struct SampleReader(string line)
    {
        private readonly string _line = line;
        private int _at;

        public PrometheusSample Read()
        {
            SkipBlanks();
            string name = ReadName(first: c => char.IsAsciiLetter(c) || c is '_' or ':', rest: c => char.IsAsciiLetterOrDigit(c) || c is '_' or ':', "metric name");
            bool blank = SkipBlanks();
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (Peek() == '{')
            {
                _at++;
                ReadLabels(labels);
                blank = SkipBlanks();
            }
            if (!blank || AtEnd)
            {
                throw new FormatException(AtEnd ? "no value" : $"unexpected '{Peek()}' after the {(labels.Count > 0 ? "labels" : "name")}");
            }
            double value = ParseValue(ReadWord());
            long? timestamp = null;
            if (SkipBlanks() && !AtEnd)
            {
                string word = ReadWord();
                timestamp = long.TryParse(word, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long ms)
                    ? ms
                    : throw new FormatException($"the timestamp '{word}' is not a whole number of milliseconds");
                SkipBlanks();
            }
            if (!AtEnd)
            {
                throw new FormatException($"unexpected '{_line[_at..]}' after the {(timestamp is null ? "value" : "timestamp")}");
            }
            return new PrometheusSample(name, labels, value, timestamp);
        }

        private readonly bool AtEnd => _at >= _line.Length;

        private readonly char Peek() => AtEnd ? '\0' : _line[_at];

        /// <returns>Whether any blank was skipped.</returns>
        private bool SkipBlanks()
        {
            int start = _at;
            while (Peek() is ' ' or '\t')
            {
                _at++;
            }
            return _at > start;
        }

        private string ReadName(Func<char, bool> first, Func<char, bool> rest, string what)
        {
            int start = _at;
            if (AtEnd || !first(Peek()))
            {
                throw new FormatException(AtEnd ? $"no {what}" : $"a {what} cannot start with '{Peek()}'");
            }
            while (!AtEnd && rest(Peek()))
            {
                _at++;
            }
            return _line[start.._at];
        }

        /// <summary>After the '{': <c>name="value"</c> pairs separated by commas (a trailing one allowed) up to '}'.</summary>
        private void ReadLabels(Dictionary<string, string> labels)
        {
            while (true)
            {
                SkipBlanks();
                if (Peek() == '}')
                {
                    _at++;
                    return;
                }
                string name = ReadName(first: c => char.IsAsciiLetter(c) || c == '_', rest: c => char.IsAsciiLetterOrDigit(c) || c == '_', "label name");
                SkipBlanks();
                Expect('=', $"'=' after the label {name}");
                SkipBlanks();
                Expect('"', $"a quoted value for the label {name}");
                if (!labels.TryAdd(name, ReadQuotedRest(name)))
                {
                    throw new FormatException($"the label {name} appears twice");
                }
                SkipBlanks();
                if (Peek() == ',')
                {
                    _at++;
                }
                else if (Peek() != '}')
                {
                    throw new FormatException(AtEnd ? "the labels are not closed with '}'" : $"expected ',' or '}}' after the label {name}, found '{Peek()}'");
                }
            }
        }

        /// <summary>A label value after its opening quote, unescaped, through the closing quote.</summary>
        private string ReadQuotedRest(string label)
        {
            var value = new StringBuilder();
            while (true)
            {
                if (AtEnd)
                {
                    throw new FormatException($"the value of the label {label} is not closed with '\"'");
                }
                char c = _line[_at++];
                if (c == '"')
                {
                    return value.ToString();
                }
                if (c != '\\')
                {
                    value.Append(c);
                    continue;
                }
                char escaped = AtEnd ? '\0' : _line[_at++];
                value.Append(escaped switch
                {
                    '\\' => '\\',
                    '"' => '"',
                    'n' => '\n',
                    _ => throw new FormatException($"the value of the label {label} has an unknown escape '\\{escaped}'"),
                });
            }
        }

        private void Expect(char expected, string what)
        {
            if (Peek() != expected)
            {
                throw new FormatException($"expected {what}, found {(AtEnd ? "the end of the line" : $"'{Peek()}'")}");
            }
            _at++;
        }

        private string ReadWord()
        {
            int start = _at;
            while (!AtEnd && Peek() is not (' ' or '\t'))
            {
                _at++;
            }
            return _line[start.._at];
        }
    }

    /// <summary>A sample value as Go's ParseFloat reads it for Prometheus: decimal or exponent notation, NaN, ±Inf.</summary>
    private static double ParseValue(string word) =>
        word.ToLowerInvariant() switch
        {
            "nan" => double.NaN,
            "+inf" or "inf" => double.PositiveInfinity,
            "-inf" => double.NegativeInfinity,
            _ => double.TryParse(word, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent,
                    CultureInfo.InvariantCulture, out double value)
                ? value
                : throw new FormatException($"the value '{word}' is not a number"),
        };
}
