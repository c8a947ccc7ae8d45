using System.Text.Json;

namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>
/// Llama 3.1's JSON calls: a reply that is <c>{"name": ..., "parameters": {...}}</c> (perhaps after
/// <c>&lt;|python_tag|&gt;</c>), more calls after <c>;</c>, as vLLM's llama3_json parser reads them. Only a reply that
/// starts with a call has calls; anything else is content from its first character. Constrained (tool_choice
/// required or a named function), the call grammar guarantees the shape, so arguments stream as they come;
/// unconstrained (auto), a call is held back until its JSON is complete and passed on only if it parses as a call
/// of an offered function; otherwise it is content, as vLLM does.
/// </summary>
public sealed class Llama3JsonToolCallParser(IReadOnlyCollection<string> functionNames, bool constrained) : ToolCallParser(functionNames)
{
    public const string PythonTag = "<|python_tag|>";

    private enum State
    {
        Start,
        Call,
        BetweenCalls,
        Content,
    }

    private State _state = State.Start;
    private CallBodyScanner? _scanner;
    private JsonExtent _extent;

    protected override bool InCall => _state == State.Call;

    protected override void Advance(bool final)
    {
        while (true)
        {
            int before = Position;
            State state = _state;
            switch (_state)
            {
                case State.Start:
                    AdvanceCallStart(final, Position);
                    break;
                case State.BetweenCalls:
                    AdvanceBetweenCalls(final);
                    break;
                case State.Call when constrained:
                    AdvanceStreamedCall(final);
                    break;
                case State.Call:
                    AdvanceHeldCall(final);
                    break;
                case State.Content:
                    EmitContent(Text[Position..]);
                    Position = Text.Length;
                    break;
            }
            if (Position == before && _state == state)
            {
                return;
            }
        }
    }

    /// <summary>At <see cref="ToolCallParser.Position"/> a call begins (after whitespace, perhaps after the python tag), or content does from <paramref name="callFrom"/>.</summary>
    private void AdvanceCallStart(bool final, int callFrom)
    {
        int i = SkipWhitespace(Position);
        if (i < Text.Length && Text[i] == '<' && PythonTag.StartsWith(Text[i..Math.Min(Text.Length, i + PythonTag.Length)], StringComparison.Ordinal))
        {
            if (Text.Length - i < PythonTag.Length)
            {
                if (final)
                {
                    ToContent(callFrom);
                }
                return;
            }
            i = SkipWhitespace(i + PythonTag.Length);
        }
        if (i == Text.Length)
        {
            if (final)
            {
                // Only whitespace: content when nothing came before it, the calls' own when calls did.
                if (CallCount == 0)
                {
                    ToContent(callFrom);
                }
                else
                {
                    Position = Text.Length;
                }
            }
            return;
        }
        if (Text[i] != '{')
        {
            ToContent(callFrom);
            return;
        }
        CallFrom = callFrom;
        BodyFrom = i;
        Position = i;
        _scanner = new CallBodyScanner(FunctionNames);
        _extent = default;
        _state = State.Call;
    }

    private void AdvanceBetweenCalls(bool final)
    {
        int i = SkipWhitespace(Position);
        if (i == Text.Length)
        {
            Position = final ? Text.Length : Position;
            return;
        }
        if (Text[i] != ';')
        {
            ToContent(Position);
            return;
        }
        int separatorFrom = Position;
        Position = i + 1;
        _state = State.Start;
        AdvanceCallStart(final, separatorFrom);
    }

    private void AdvanceStreamedCall(bool final)
    {
        int position = Position;
        CallBodyScanner.Status status = _scanner!.Scan(Text, ref position, EmitCallStart, EmitArguments);
        if (!_scanner.HeaderRead && (status == CallBodyScanner.Status.Mismatch || final))
        {
            ToContent(CallFrom);
            return;
        }
        Position = position;
        if (status == CallBodyScanner.Status.Done)
        {
            _state = State.BetweenCalls;
        }
        else if (final)
        {
            Position = Text.Length;
        }
    }

    private void AdvanceHeldCall(bool final)
    {
        int end = _extent.FindEnd(Text, BodyFrom);
        if (end < 0)
        {
            if (final)
            {
                ToContent(CallFrom);
            }
            return;
        }
        if (!TryReadCall(Text[BodyFrom..end], out string? name, out string? arguments))
        {
            ToContent(CallFrom);
            return;
        }
        EmitCallStart(name!);
        EmitArguments(arguments!);
        Position = end;
        _state = State.BetweenCalls;
    }

    private bool TryReadCall(string json, out string? name, out string? arguments)
    {
        name = arguments = null;
        try
        {
            using JsonDocument call = JsonDocument.Parse(json);
            JsonElement root = call.RootElement;
            if (root.TryGetProperty("name", out JsonElement nameValue) && nameValue.ValueKind == JsonValueKind.String
                && FunctionNames.Contains(nameValue.GetString()!)
                && (root.TryGetProperty("parameters", out JsonElement value) || root.TryGetProperty("arguments", out value)))
            {
                name = nameValue.GetString();
                arguments = value.GetRawText();
                return true;
            }
            return false;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Everything from <paramref name="from"/> on is content: a reply that is not calls does not turn into calls later.</summary>
    private void ToContent(int from)
    {
        Position = from;
        _state = State.Content;
    }

    private int SkipWhitespace(int i)
    {
        while (i < Text.Length && IsJsonWhitespace(Text[i]))
        {
            i++;
        }
        return i;
    }

    /// <summary>Finds where a JSON object closes, reading each character once however the text arrives.</summary>
    private struct JsonExtent
    {
        private int _scanned;
        private int _depth;
        private bool _inString;
        private bool _escaped;

        /// <summary>The index just past the object starting at <paramref name="from"/>, or -1 while it is open.</summary>
        public int FindEnd(string text, int from)
        {
            for (int i = from + _scanned; i < text.Length; i++)
            {
                _scanned++;
                char c = text[i];
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
                    }
                    continue;
                }
                if (c == '"')
                {
                    _inString = true;
                }
                else if (c is '{' or '[')
                {
                    _depth++;
                }
                else if (c is '}' or ']' && --_depth == 0)
                {
                    return i + 1;
                }
            }
            return -1;
        }
    }
}
