using System.Text;

namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>
/// One choice's calls as its reply is parsed: the call ids, and what the parsed pieces add up to. The streamed
/// response writes each piece as it comes; the non-streamed one reads the totals after feeding the whole text.
/// </summary>
public sealed class ToolCallReader(ToolCallParser parser)
{
    private readonly StringBuilder _content = new();
    private readonly List<(string Id, string Name, StringBuilder Arguments)> _calls = [];

    public IReadOnlyList<ParsedPiece> Feed(string delta) => Record(parser.Feed(delta));

    public IReadOnlyList<ParsedPiece> Finish() => Record(parser.Finish());

    public bool HasCalls => _calls.Count > 0;

    /// <summary>The reply's text outside calls; null when the reply was only calls, as OpenAI has it.</summary>
    public string? Content => HasCalls && _content.Length == 0 ? null : _content.ToString();

    public string CallId(int index) => _calls[index].Id;

    public IReadOnlyList<ToolCall> Calls => _calls.Select(c => new ToolCall(c.Id, "function", new FunctionCall(c.Name, c.Arguments.ToString()))).ToArray();

    private IReadOnlyList<ParsedPiece> Record(IReadOnlyList<ParsedPiece> pieces)
    {
        foreach (ParsedPiece piece in pieces)
        {
            switch (piece.Kind)
            {
                case ParsedKind.Content:
                    _content.Append(piece.Text);
                    break;
                case ParsedKind.CallStart:
                    // OpenAI's ids are "call_" and 24 letters and digits.
                    _calls.Add(($"call_{Guid.NewGuid():N}"[..29], piece.Text, new StringBuilder()));
                    break;
                case ParsedKind.Arguments:
                    _calls[piece.Index].Arguments.Append(piece.Text);
                    break;
            }
        }
        return pieces;
    }
}
