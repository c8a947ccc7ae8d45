namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>
/// Hermes-style calls, as Qwen2.5 and Qwen3 write them and as the default tool prompt asks for:
/// <c>&lt;tool_call&gt;\n{"name": ..., "arguments": {...}}\n&lt;/tool_call&gt;</c>, anywhere in the reply, one or more.
/// Whitespace next to a call is the call's, not content (the newline between two calls, say). A marker whose
/// JSON does not begin like a call of one of the offered functions is content, as vLLM treats it; with the call
/// grammar in force (every mode that parses Hermes calls) that cannot happen.
/// </summary>
public sealed class HermesToolCallParser(IReadOnlyCollection<string> functionNames) : ToolCallParser(functionNames)
{
    public const string CallStart = "<tool_call>";
    public const string CallEnd = "</tool_call>";

    private enum State
    {
        Content,
        Call,
        AfterCall,
    }

    private State _state = State.Content;
    private bool _afterCallBoundary;
    private CallBodyScanner? _scanner;

    protected override bool InCall => _state == State.Call;

    protected override void Advance(bool final)
    {
        while (true)
        {
            int before = Position;
            State state = _state;
            switch (_state)
            {
                case State.Content:
                    AdvanceContent(final);
                    break;
                case State.Call:
                    AdvanceCall(final);
                    break;
                case State.AfterCall:
                    AdvanceAfterCall(final);
                    break;
            }
            if (Position == before && _state == state)
            {
                return;
            }
        }
    }

    private void AdvanceContent(bool final)
    {
        if (_afterCallBoundary)
        {
            while (Position < Text.Length && IsJsonWhitespace(Text[Position]))
            {
                Position++;
            }
            if (Position == Text.Length)
            {
                return;
            }
            _afterCallBoundary = false;
        }
        int marker = Text.IndexOf(CallStart, Position, StringComparison.Ordinal);
        if (marker >= 0)
        {
            int contentEnd = TrimWhitespaceEnd(Position, marker);
            EmitContent(Text[Position..contentEnd]);
            CallFrom = contentEnd;
            BodyFrom = marker + CallStart.Length;
            Position = BodyFrom;
            _scanner = new CallBodyScanner(FunctionNames);
            _state = State.Call;
            return;
        }
        if (final)
        {
            EmitContent(Text[Position..]);
            Position = Text.Length;
            return;
        }
        int held = Text.Length - PartialMarkerLength(Text, Position, CallStart);
        int end = TrimWhitespaceEnd(Position, held);
        EmitContent(Text[Position..end]);
        Position = end;
    }

    private void AdvanceCall(bool final)
    {
        int position = Position;
        CallBodyScanner.Status status = _scanner!.Scan(Text, ref position, EmitCallStart, EmitArguments);
        if (status == CallBodyScanner.Status.Mismatch || (final && status == CallBodyScanner.Status.NeedMore && !_scanner.HeaderRead))
        {
            if (_scanner.HeaderRead)
            {
                // The header was read and passed on: the call stands as far as it got.
                Position = position;
                _state = State.AfterCall;
                return;
            }
            EmitContent(Text[CallFrom..BodyFrom]);
            Position = BodyFrom;
            _state = State.Content;
            return;
        }
        Position = position;
        if (status == CallBodyScanner.Status.Done || final)
        {
            _state = State.AfterCall;
        }
    }

    /// <summary>What follows a call's JSON up to its closing marker is the call's, never content.</summary>
    private void AdvanceAfterCall(bool final)
    {
        int end = Text.IndexOf(CallEnd, Position, StringComparison.Ordinal);
        if (end >= 0)
        {
            Position = end + CallEnd.Length;
            _state = State.Content;
            _afterCallBoundary = true;
            return;
        }
        if (final)
        {
            Position = Text.Length;
        }
    }

    private int TrimWhitespaceEnd(int from, int end)
    {
        while (end > from && IsJsonWhitespace(Text[end - 1]))
        {
            end--;
        }
        return end;
    }
}
