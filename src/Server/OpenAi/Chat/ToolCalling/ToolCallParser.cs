using System.Text;

namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>What a piece of model output turned out to be: reply text, the start of a call, or a fragment of its arguments.</summary>
public enum ParsedKind
{
    Content,
    CallStart,
    Arguments,
}

/// <param name="Index">The call's position among the reply's calls (CallStart and Arguments).</param>
/// <param name="Text">The content text, the function's name (CallStart), or the arguments' next raw JSON text.</param>
public readonly record struct ParsedPiece(ParsedKind Kind, int Index, string Text);

/// <summary>
/// Splits a model's reply into content and tool calls as the text arrives. Streamed and non-streamed replies
/// feed the same parser (one delta or the whole text), and every decision it makes depends only on the text
/// seen so far, never on where the deltas were cut: so both give the same content and the same calls.
/// Text that may still become part of a call is held back until that is decided, so none of a call ever
/// reaches content.
/// </summary>
public abstract class ToolCallParser
{
    private readonly StringBuilder _text = new();
    private readonly List<ParsedPiece> _output = [];

    protected ToolCallParser(IReadOnlyCollection<string> functionNames) => FunctionNames = functionNames;

    /// <summary>The functions the request offers: a call naming another one is not a call.</summary>
    protected IReadOnlyCollection<string> FunctionNames { get; }

    /// <summary>Where the text not yet decided upon starts.</summary>
    protected int Position { get; set; }

    /// <summary>How many calls have started.</summary>
    public int CallCount { get; private set; }

    protected string Text { get; private set; } = "";

    /// <summary>The pieces the text so far decides; the rest is held back.</summary>
    public IReadOnlyList<ParsedPiece> Feed(string delta)
    {
        _text.Append(delta);
        return Run(final: false);
    }

    /// <summary>The reply is complete: what was held back is decided.</summary>
    public IReadOnlyList<ParsedPiece> Finish() => Run(final: true);

    private List<ParsedPiece> Run(bool final)
    {
        Text = _text.ToString();
        _output.Clear();
        Advance(final);
        // Text already decided is dropped, so a long reply is not copied whole for every delta.
        int decided = RetainFrom;
        if (decided > 0)
        {
            _text.Remove(0, decided);
            Position -= decided;
            Rebase(decided);
        }
        var pieces = new List<ParsedPiece>(_output.Count);
        foreach (ParsedPiece piece in _output)
        {
            // Adjacent content pieces become one, so a delta is one content chunk at most per run of text.
            if (piece.Kind == ParsedKind.Content && pieces.Count > 0 && pieces[^1].Kind == ParsedKind.Content)
            {
                pieces[^1] = pieces[^1] with { Text = pieces[^1].Text + piece.Text };
            }
            else if (piece.Text.Length > 0 || piece.Kind == ParsedKind.CallStart)
            {
                pieces.Add(piece);
            }
        }
        return pieces;
    }

    /// <summary>Where the text of the call being read starts (the whitespace before its marker), kept for a call that turns out not to be one.</summary>
    protected int CallFrom { get; set; }

    /// <summary>Where the call's JSON body starts.</summary>
    protected int BodyFrom { get; set; }

    /// <summary>Whether a call is being read: its text from <see cref="CallFrom"/> must stay until it is decided.</summary>
    protected abstract bool InCall { get; }

    /// <summary>Where the text the parser may still look back at starts.</summary>
    private int RetainFrom => InCall ? CallFrom : Position;

    /// <summary>The first <paramref name="removed"/> characters are gone: positions the parser keeps move back by as much.</summary>
    private void Rebase(int removed)
    {
        CallFrom -= removed;
        BodyFrom -= removed;
    }

    /// <summary>Decides as much of <see cref="Text"/> from <see cref="Position"/> as it can; with <paramref name="final"/> all of it.</summary>
    protected abstract void Advance(bool final);

    protected void EmitContent(string text) => _output.Add(new ParsedPiece(ParsedKind.Content, 0, text));

    protected void EmitCallStart(string name) => _output.Add(new ParsedPiece(ParsedKind.CallStart, CallCount++, name));

    protected void EmitArguments(string fragment) => _output.Add(new ParsedPiece(ParsedKind.Arguments, CallCount - 1, fragment));

    /// <summary>The length of the longest end of <paramref name="text"/> that <paramref name="marker"/> starts with (a marker perhaps cut by a delta).</summary>
    protected static int PartialMarkerLength(string text, int from, string marker)
    {
        for (int length = Math.Min(marker.Length - 1, text.Length - from); length > 0; length--)
        {
            if (string.CompareOrdinal(text, text.Length - length, marker, 0, length) == 0)
            {
                return length;
            }
        }
        return 0;
    }

    protected static bool IsJsonWhitespace(char c) => c is ' ' or '\t' or '\n' or '\r';
}
