using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace LlmServer.ChatTemplates;

/// <summary>
/// Splits template source into text and tag tokens. Whitespace control happens here, as in Jinja's
/// own lexer, with Hugging Face's settings: <c>trim_blocks</c> (drop the newline after a block or
/// comment tag), <c>lstrip_blocks</c> (drop indentation before a block or comment tag that starts a
/// line), plus explicit <c>-</c> (strip) and <c>+</c> (keep) markers on tags.
/// </summary>
internal sealed partial class TemplateLexer
{
    // Longest first, so "//" wins over "/".
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private readonly string _source;
    private readonly List<int> _lineStarts = [0];
    private readonly List<TemplateToken> _tokens = [];
    private int _position;

    private TemplateLexer(string source)
    {
        _source = source;
        for (int i = 0; i < source.Length; i++)
        {
            if (source[i] == '\n')
            {
                _lineStarts.Add(i + 1);
            }
        }
    }

    public static List<TemplateToken> Tokenize(string source) => new TemplateLexer(NormalizeNewlines(source)).Run();

    /// <summary>
    /// Jinja turns every newline flavour into \n and, because keep_trailing_newline is off, drops a
    /// single newline at the very end of the template.
    /// </summary>
    private static string NormalizeNewlines(string source)
    {
        string normalized = source.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n');
        return normalized.EndsWith('\n') ? normalized[..^1] : normalized;
    }

    private List<TemplateToken> Run()
    {
        while (_position < _source.Length)
        {
            int tagStart = FindNextTagStart(_position);
            if (tagStart < 0)
            {
                AddText(_source[_position..], _position);
                break;
            }

            char kind = _source[tagStart + 1];
            int afterOpener = tagStart + 2;
            char sign = afterOpener < _source.Length && _source[afterOpener] is '-' or '+' ? _source[afterOpener] : '\0';
            bool lineStarting = _position == 0 || _source[_position - 1] == '\n';
            string text = StripBeforeTag(_source[_position..tagStart], sign, stripsIndentation: kind != '{', lineStarting);
            AddText(text, _position);

            int contentStart = afterOpener + (sign == '\0' ? 0 : 1);
            Match rawBegin = kind == '%' ? RawBeginPattern().Match(_source, tagStart) : Match.Empty;
            if (rawBegin.Success)
            {
                LexRaw(tagStart, rawBegin);
            }
            else if (kind == '#')
            {
                LexComment(tagStart, contentStart);
            }
            else
            {
                LexTag(isBlock: kind == '%', tagStart, contentStart);
            }
        }

        _tokens.Add(new TemplateToken(TemplateTokenKind.EndOfTemplate, "", LineAt(_source.Length)));
        return _tokens;
    }

    private int FindNextTagStart(int from)
    {
        for (int i = _source.IndexOf('{', from); i >= 0 && i + 1 < _source.Length; i = _source.IndexOf('{', i + 1))
        {
            if (_source[i + 1] is '{' or '%' or '#')
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>
    /// Applies the left-hand whitespace rules to the text in front of a tag. lstrip_blocks only removes
    /// indentation, never a newline, and only when nothing but whitespace precedes the tag on its line.
    /// </summary>
    private static string StripBeforeTag(string text, char sign, bool stripsIndentation, bool lineStarting)
    {
        if (sign == '-')
        {
            return text.TrimEnd();
        }

        if (sign == '+' || !stripsIndentation)
        {
            return text;
        }

        int lineStart = text.LastIndexOf('\n') + 1;
        bool onlyIndentation = lineStart < text.Length && text.AsSpan(lineStart).TrimStart().IsEmpty;
        return (lineStart > 0 || lineStarting) && onlyIndentation ? text[..lineStart] : text;
    }

    private void LexComment(int tagStart, int contentStart)
    {
        int end = _source.IndexOf("#}", contentStart, StringComparison.Ordinal);
        if (end < 0)
        {
            throw ChatTemplateException.Syntax("missing end of comment tag '#}'", LineAt(tagStart));
        }

        char sign = end - 1 >= contentStart ? _source[end - 1] : '\0';
        _position = ApplyTrailingWhitespaceRule(end + 2, sign);
    }

    /// <summary>
    /// <c>{% raw %}...{% endraw %}</c> emits its body verbatim; Jinja's rules for the markers themselves
    /// differ slightly from ordinary tags (no trim_blocks after the opening one).
    /// </summary>
    private void LexRaw(int tagStart, Match rawBegin)
    {
        int dataStart = rawBegin.Index + rawBegin.Length;
        if (rawBegin.Groups["strip"].Success)
        {
            dataStart = SkipWhitespace(dataStart);
        }

        Match rawEnd = RawEndPattern().Match(_source, dataStart);
        if (!rawEnd.Success)
        {
            throw ChatTemplateException.Syntax("missing end of raw directive '{% endraw %}'", LineAt(tagStart));
        }

        string sign = rawEnd.Groups["sign"].Value;
        bool lineStarting = dataStart == 0 || _source[dataStart - 1] == '\n';
        string data = StripBeforeTag(_source[dataStart..rawEnd.Index], sign.Length > 0 ? sign[0] : '\0', stripsIndentation: true, lineStarting);
        AddText(data, dataStart);

        char endSign = rawEnd.Groups["keep"].Success ? '+' : rawEnd.Groups["strip"].Success ? '-' : '\0';
        _position = ApplyTrailingWhitespaceRule(rawEnd.Index + rawEnd.Length, endSign);
    }

    private void LexTag(bool isBlock, int tagStart, int contentStart)
    {
        _tokens.Add(new TemplateToken(
            isBlock ? TemplateTokenKind.BlockBegin : TemplateTokenKind.VariableBegin, isBlock ? "{%" : "{{", LineAt(tagStart)));

        // Jinja only recognises "}}" / "%}" as the end of the tag when brackets are balanced, so dict
        // literals such as {{ {'a': {'b': 1}} }} lex correctly.
        var openBrackets = new Stack<char>();
        int position = contentStart;
        while (true)
        {
            position = SkipWhitespace(position);
            if (position >= _source.Length)
            {
                throw ChatTemplateException.Syntax(
                    $"unexpected end of template, expected '{(isBlock ? "%}" : "}}")}' to close the tag", LineAt(tagStart));
            }

            if (openBrackets.Count == 0 && TryLexTagEnd(isBlock, position))
            {
                return;
            }

            position = LexExpressionToken(position, openBrackets);
        }
    }

    private bool TryLexTagEnd(bool isBlock, int position)
    {
        string close = isBlock ? "%}" : "}}";
        char sign = _source[position] is '-' or '+' ? _source[position] : '\0';
        if ((sign == '+' && !isBlock) || string.CompareOrdinal(_source, position + (sign == '\0' ? 0 : 1), close, 0, 2) != 0)
        {
            return false;
        }

        _tokens.Add(new TemplateToken(
            isBlock ? TemplateTokenKind.BlockEnd : TemplateTokenKind.VariableEnd, close, LineAt(position)));
        int after = position + (sign == '\0' ? 2 : 3);
        // trim_blocks applies to block tags only; a variable tag keeps the newline that follows it.
        _position = isBlock ? ApplyTrailingWhitespaceRule(after, sign) : sign == '-' ? SkipWhitespace(after) : after;
        return true;
    }

    /// <summary>After a block or comment tag: '-' strips all whitespace, '+' keeps it, otherwise trim_blocks drops one newline.</summary>
    private int ApplyTrailingWhitespaceRule(int after, char sign) => sign switch
    {
        '-' => SkipWhitespace(after),
        '+' => after,
        _ => after < _source.Length && _source[after] == '\n' ? after + 1 : after,
    };

    private int LexExpressionToken(int position, Stack<char> openBrackets)
    {
        int line = LineAt(position);
        char c = _source[position];

        Match number = FloatPattern().Match(_source, position);
        if (number.Success)
        {
            _tokens.Add(new TemplateToken(TemplateTokenKind.Float, number.Value.Replace("_", "", StringComparison.Ordinal), line));
            return position + number.Length;
        }

        number = IntegerPattern().Match(_source, position);
        if (number.Success)
        {
            _tokens.Add(new TemplateToken(TemplateTokenKind.Integer, ParseInteger(number.Value, line), line));
            return position + number.Length;
        }

        if (char.IsLetter(c) || c == '_')
        {
            int end = position + 1;
            while (end < _source.Length && (char.IsLetterOrDigit(_source[end]) || _source[end] == '_'))
            {
                end++;
            }

            _tokens.Add(new TemplateToken(TemplateTokenKind.Name, _source[position..end], line));
            return end;
        }

        if (c is '\'' or '"')
        {
            return LexString(position, line);
        }

        foreach (string op in Operators)
        {
            if (string.CompareOrdinal(_source, position, op, 0, op.Length) == 0)
            {
                TrackBrackets(op[0], openBrackets, line);
                _tokens.Add(new TemplateToken(TemplateTokenKind.Operator, op, line));
                return position + op.Length;
            }
        }

        throw ChatTemplateException.Syntax($"unexpected character '{c}'", line);
    }

    private static void TrackBrackets(char symbol, Stack<char> openBrackets, int line)
    {
        char? expectedOpen = symbol switch { ')' => '(', ']' => '[', '}' => '{', _ => null };
        if (symbol is '(' or '[' or '{')
        {
            openBrackets.Push(symbol);
        }
        else if (expectedOpen is { } open)
        {
            if (openBrackets.Count == 0)
            {
                throw ChatTemplateException.Syntax($"unexpected '{symbol}'", line);
            }

            if (openBrackets.Peek() != open)
            {
                char expectedClose = openBrackets.Peek() switch { '(' => ')', '[' => ']', _ => '}' };
                throw ChatTemplateException.Syntax($"unexpected '{symbol}', expected '{expectedClose}'", line);
            }

            openBrackets.Pop();
        }
    }

    private int LexString(int start, int line)
    {
        char quote = _source[start];
        int i = start + 1;
        while (i < _source.Length && _source[i] != quote)
        {
            i += _source[i] == '\\' ? 2 : 1;
        }

        if (i >= _source.Length)
        {
            throw ChatTemplateException.Syntax("unterminated string literal", line);
        }

        _tokens.Add(new TemplateToken(TemplateTokenKind.String, DecodeEscapes(_source[(start + 1)..i], line), line));
        return i + 1;
    }

    /// <summary>Python's string escapes; unknown escapes such as \d stay as written, as in Python.</summary>
    private static string DecodeEscapes(string raw, int line)
    {
        if (!raw.Contains('\\'))
        {
            return raw;
        }

        var builder = new StringBuilder(raw.Length);
        for (int i = 0; i < raw.Length; i++)
        {
            if (raw[i] != '\\' || i + 1 >= raw.Length)
            {
                builder.Append(raw[i]);
                continue;
            }

            char escape = raw[++i];
            switch (escape)
            {
                case '\n': break;
                case '\\': builder.Append('\\'); break;
                case '\'': builder.Append('\''); break;
                case '"': builder.Append('"'); break;
                case 'a': builder.Append('\a'); break;
                case 'b': builder.Append('\b'); break;
                case 'f': builder.Append('\f'); break;
                case 'n': builder.Append('\n'); break;
                case 'r': builder.Append('\r'); break;
                case 't': builder.Append('\t'); break;
                case 'v': builder.Append('\v'); break;
                case 'x': i = AppendHexEscape(builder, raw, i, 2, line); break;
                case 'u': i = AppendHexEscape(builder, raw, i, 4, line); break;
                case 'U': i = AppendHexEscape(builder, raw, i, 8, line); break;
                case >= '0' and <= '7':
                    int end = i;
                    while (end < raw.Length && end < i + 3 && raw[end] is >= '0' and <= '7')
                    {
                        end++;
                    }

                    builder.Append((char)Convert.ToInt32(raw[i..end], 8));
                    i = end - 1;
                    break;
                default:
                    builder.Append('\\').Append(escape);
                    break;
            }
        }

        return builder.ToString();
    }

    private static int AppendHexEscape(StringBuilder builder, string raw, int escapeIndex, int digits, int line)
    {
        int start = escapeIndex + 1;
        if (start + digits > raw.Length
            || !int.TryParse(raw.AsSpan(start, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int codePoint)
            || codePoint > 0x10FFFF)
        {
            throw ChatTemplateException.Syntax($"invalid \\{raw[escapeIndex]} escape in string literal", line);
        }

        builder.Append(char.ConvertFromUtf32(codePoint is >= 0xD800 and <= 0xDFFF ? 0xFFFD : codePoint));
        return start + digits - 1;
    }

    private static string ParseInteger(string literal, int line)
    {
        string digits = literal.Replace("_", "", StringComparison.Ordinal);
        int numberBase = digits.Length > 1 && digits[0] == '0'
            ? char.ToLowerInvariant(digits[1]) switch { 'b' => 2, 'o' => 8, 'x' => 16, _ => 10 }
            : 10;
        try
        {
            long value = numberBase == 10
                ? long.Parse(digits, CultureInfo.InvariantCulture)
                : Convert.ToInt64(digits[2..], numberBase);
            return value.ToString(CultureInfo.InvariantCulture);
        }
        catch (OverflowException)
        {
            throw ChatTemplateException.Syntax($"integer literal {literal} is too large", line);
        }
    }

    private int SkipWhitespace(int position)
    {
        while (position < _source.Length && char.IsWhiteSpace(_source[position]))
        {
            position++;
        }

        return position;
    }

    private void AddText(string text, int offset)
    {
        if (text.Length > 0)
        {
            _tokens.Add(new TemplateToken(TemplateTokenKind.Text, text, LineAt(offset)));
        }
    }

    private int LineAt(int offset)
    {
        int index = _lineStarts.BinarySearch(offset);
        return (index >= 0 ? index : ~index - 1) + 1;
    }

    [GeneratedRegex(@"\G\{%[-+]?\s*raw\s*(?:(?<strip>-)%\}|%\})")]
    private static partial Regex RawBeginPattern();

    [GeneratedRegex(@"\{%(?<sign>[-+]?)\s*endraw\s*(?:(?<keep>\+)%\}|(?<strip>-)%\}|%\})")]
    private static partial Regex RawEndPattern();

    [GeneratedRegex(@"\G(?<!\.)(?:\d+_)*\d+(?:(?:\.(?:\d+_)*\d+)?[eE][+\-]?(?:\d+_)*\d+|\.(?:\d+_)*\d+)")]
    private static partial Regex FloatPattern();

    [GeneratedRegex(@"\G(?:0[bB](?:_?[01])+|0[oO](?:_?[0-7])+|0[xX](?:_?[0-9a-fA-F])+|[1-9](?:_?\d)*|0(?:_?0)*)")]
    private static partial Regex IntegerPattern();
}
