using System.Text;

namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>
/// Reads one call's JSON, <c>{"name": "&lt;function&gt;", "arguments": &lt;value&gt;}</c> (or <c>"parameters"</c>, Llama 3.1's
/// key), one character at a time, in the key order the call grammar writes: the name is known once its key and value
/// are read, and the arguments' raw text is passed on as it comes, which is what lets a streamed call show its
/// arguments growing. A character that cannot belong to the header is a mismatch: the text is not a call after all.
/// </summary>
internal sealed class CallBodyScanner(IReadOnlyCollection<string> functionNames)
{
    /// <summary>OpenAI's limit on function names; a longer run of characters is no name of ours.</summary>
    private const int MaxNameLength = 64;

    public enum Status
    {
        NeedMore,
        /// <summary>The text is not a call; nothing of it was passed on.</summary>
        Mismatch,
        /// <summary>The arguments are complete (and the closing brace read, unless the text broke off the call's shape there).</summary>
        Done,
    }

    private enum Step
    {
        OpenBrace,
        NameKey,
        NameColon,
        NameQuote,
        Name,
        Comma,
        ArgumentsKeyQuote,
        ArgumentsKey,
        ArgumentsColon,
        ValueStart,
        Value,
        CloseBrace,
    }

    private Step _step = Step.OpenBrace;
    private int _literalMatched;
    private readonly StringBuilder _token = new();
    private int _depth;
    private bool _inString;
    private bool _escaped;
    private bool _scalar;

    public string? Name { get; private set; }

    /// <summary>Whether the header is read and passed on: from then on the text is a call, whatever follows.</summary>
    public bool HeaderRead { get; private set; }

    /// <summary>Reads from <paramref name="position"/> on, moving it past what it consumed.</summary>
    /// <param name="onHeader">Called once with the function's name when the header is read.</param>
    /// <param name="onArguments">Called with the arguments' raw text read in this call, if any.</param>
    public Status Scan(string text, ref int position, Action<string> onHeader, Action<string> onArguments)
    {
        var arguments = new StringBuilder();
        Status status = Status.NeedMore;
        while (status == Status.NeedMore && position < text.Length)
        {
            char c = text[position];
            switch (_step)
            {
                case Step.ValueStart when !IsWhitespace(c):
                    _step = Step.Value;
                    _scalar = c is not ('{' or '[' or '"');
                    continue;
                case Step.Value:
                    if (_scalar && (c is ',' or '}' or ']' || IsWhitespace(c)))
                    {
                        _step = Step.CloseBrace;
                        continue;
                    }
                    arguments.Append(c);
                    position++;
                    if (CompletesValue(c))
                    {
                        _step = Step.CloseBrace;
                    }
                    continue;
                case Step.CloseBrace:
                    if (IsWhitespace(c))
                    {
                        position++;
                        continue;
                    }
                    // The arguments are out; a call broken off after them is still the call it was.
                    position += c == '}' ? 1 : 0;
                    status = Status.Done;
                    continue;
            }
            if (_step is not (Step.Name or Step.ArgumentsKey) && _literalMatched == 0 && IsWhitespace(c))
            {
                position++;
                continue;
            }
            status = Accept(c, onHeader);
            if (status != Status.Mismatch)
            {
                position++;
            }
        }
        if (arguments.Length > 0)
        {
            onArguments(arguments.ToString());
        }
        return status;
    }

    private Status Accept(char c, Action<string> onHeader)
    {
        switch (_step)
        {
            case Step.OpenBrace:
                return Expect(c, "{", Step.NameKey);
            case Step.NameKey:
                return Expect(c, "\"name\"", Step.NameColon);
            case Step.NameColon:
                return Expect(c, ":", Step.NameQuote);
            case Step.NameQuote:
                return Expect(c, "\"", Step.Name);
            case Step.Name:
                if (c == '"')
                {
                    string name = _token.ToString();
                    _token.Clear();
                    if (!functionNames.Contains(name))
                    {
                        return Status.Mismatch;
                    }
                    Name = name;
                    _step = Step.Comma;
                    return Status.NeedMore;
                }
                if (c == '\\' || char.IsControl(c) || _token.Length >= MaxNameLength)
                {
                    return Status.Mismatch;
                }
                _token.Append(c);
                return Status.NeedMore;
            case Step.Comma:
                return Expect(c, ",", Step.ArgumentsKeyQuote);
            case Step.ArgumentsKeyQuote:
                return Expect(c, "\"", Step.ArgumentsKey);
            case Step.ArgumentsKey:
                if (c == '"')
                {
                    string key = _token.ToString();
                    _token.Clear();
                    if (key is not ("arguments" or "parameters"))
                    {
                        return Status.Mismatch;
                    }
                    _step = Step.ArgumentsColon;
                    return Status.NeedMore;
                }
                _token.Append(c);
                return _token.Length > "parameters".Length ? Status.Mismatch : Status.NeedMore;
            case Step.ArgumentsColon:
                if (c != ':')
                {
                    return Status.Mismatch;
                }
                _step = Step.ValueStart;
                HeaderRead = true;
                onHeader(Name!);
                return Status.NeedMore;
            default:
                throw new InvalidOperationException($"unexpected step {_step}");
        }
    }

    private Status Expect(char c, string literal, Step next)
    {
        if (c != literal[_literalMatched])
        {
            return Status.Mismatch;
        }
        if (++_literalMatched == literal.Length)
        {
            _literalMatched = 0;
            _step = next;
        }
        return Status.NeedMore;
    }

    private static bool IsWhitespace(char c) => c is ' ' or '\t' or '\n' or '\r';

    /// <summary>Tracks strings and nesting; true when <paramref name="c"/> completes the value.</summary>
    private bool CompletesValue(char c)
    {
        if (_inString)
        {
            if (_escaped)
            {
                _escaped = false;
            }
            else if (c == '\\')
            {
                _escaped = true;
            }
            else if (c == '"')
            {
                _inString = false;
                return _depth == 0;
            }
            return false;
        }
        switch (c)
        {
            case '"':
                _inString = true;
                return false;
            case '{' or '[':
                _depth++;
                return false;
            case '}' or ']':
                _depth--;
                return _depth == 0;
            default:
                return false;
        }
    }
}
