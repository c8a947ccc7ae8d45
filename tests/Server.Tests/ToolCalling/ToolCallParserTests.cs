using System.Text;
using LlmServer.OpenAi.Chat.ToolCalling;

namespace LlmServer.Tests.ToolCalling;

/// <summary>
/// The parsers fed whole replies and the same replies cut into deltas at every place: content and calls must come
/// out the same however the text was cut, and nothing of a call may ever reach content.
/// </summary>
public sealed class ToolCallParserTests
{
    private static readonly string[] Names = ["get_weather", "add"];

    /// <summary>What a parser made of a reply: its content and its calls (name, arguments).</summary>
    private sealed record Parsed(string Content, IReadOnlyList<(string Name, string Arguments)> Calls);

    private static Parsed Collect(IEnumerable<ParsedPiece> pieces)
    {
        var content = new StringBuilder();
        var calls = new List<(string Name, StringBuilder Arguments)>();
        foreach (ParsedPiece piece in pieces)
        {
            switch (piece.Kind)
            {
                case ParsedKind.Content:
                    content.Append(piece.Text);
                    break;
                case ParsedKind.CallStart:
                    Assert.Equal(calls.Count, piece.Index);
                    calls.Add((piece.Text, new StringBuilder()));
                    break;
                case ParsedKind.Arguments:
                    Assert.Equal(calls.Count - 1, piece.Index);
                    calls[piece.Index].Arguments.Append(piece.Text);
                    break;
            }
        }
        return new Parsed(content.ToString(), calls.Select(c => (c.Name, c.Arguments.ToString())).ToArray());
    }

    private static Parsed Parse(Func<ToolCallParser> create, IEnumerable<string> deltas)
    {
        ToolCallParser parser = create();
        var pieces = new List<ParsedPiece>();
        foreach (string delta in deltas)
        {
            pieces.AddRange(parser.Feed(delta));
        }
        pieces.AddRange(parser.Finish());
        return Collect(pieces);
    }

    /// <summary>Parses <paramref name="text"/> whole, then cut in two at every place and one character at a time, and asserts all agree.</summary>
    private static Parsed ParseEveryWay(Func<ToolCallParser> create, string text)
    {
        Parsed whole = Parse(create, [text]);
        for (int cut = 0; cut <= text.Length; cut++)
        {
            AssertSame(whole, Parse(create, [text[..cut], text[cut..]]), $"cut at {cut}");
        }
        AssertSame(whole, Parse(create, text.Select(c => c.ToString())), "one character at a time");
        return whole;
    }

    private static void AssertSame(Parsed expected, Parsed actual, string how)
    {
        Assert.True(expected.Content == actual.Content, $"{how}: content '{actual.Content}' instead of '{expected.Content}'");
        Assert.Equal(expected.Calls, actual.Calls);
    }

    private static ToolCallParser Hermes() => new HermesToolCallParser(Names);

    [Fact]
    public void A_hermes_call_is_read_with_its_arguments_raw()
    {
        Parsed parsed = ParseEveryWay(Hermes, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": [1, 2]}}\n</tool_call>");

        Assert.Equal("", parsed.Content);
        Assert.Equal([("get_weather", "{\"city\": \"Paris\", \"days\": [1, 2]}")], parsed.Calls);
    }

    [Fact]
    public void Text_before_a_call_is_content_and_the_whitespace_next_to_calls_is_not()
    {
        Parsed parsed = ParseEveryWay(Hermes,
            "Let me look that up.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n" +
            "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1, \"b\": 2}}\n</tool_call>\n");

        Assert.Equal("Let me look that up.", parsed.Content);
        Assert.Equal([("get_weather", "{\"city\": \"Paris\"}"), ("add", "{\"a\": 1, \"b\": 2}")], parsed.Calls);
    }

    [Fact]
    public void Markers_and_braces_inside_argument_strings_belong_to_the_arguments()
    {
        const string arguments = "{\"city\": \"a \\\"}</tool_call><tool_call>{\\\\\", \"n\": {\"x\": [{}]}}";
        Parsed parsed = ParseEveryWay(Hermes, $"<tool_call>\n{{\"name\": \"get_weather\", \"arguments\": {arguments}}}\n</tool_call>");

        Assert.Equal([("get_weather", arguments)], parsed.Calls);
        Assert.Equal("", parsed.Content);
    }

    [Fact]
    public void A_marker_cut_by_a_delta_is_held_back_until_it_is_known()
    {
        ToolCallParser parser = Hermes();

        Assert.Equal([new ParsedPiece(ParsedKind.Content, 0, "Hi")], parser.Feed("Hi <tool_"));
        Assert.Empty(parser.Feed("call>\n{\"name\": \"ad"));
        Assert.Equal([new ParsedPiece(ParsedKind.CallStart, 0, "add"), new ParsedPiece(ParsedKind.Arguments, 0, "{\"a\"")],
            parser.Feed("d\", \"arguments\": {\"a\""));
        Assert.Equal([new ParsedPiece(ParsedKind.Arguments, 0, ": 1}")], parser.Feed(": 1}}\n</tool_call>"));
        Assert.Empty(parser.Finish());
    }

    [Fact]
    public void Text_that_only_looks_like_a_marker_is_content_once_it_is_not_one()
    {
        ToolCallParser parser = Hermes();

        Assert.Equal([new ParsedPiece(ParsedKind.Content, 0, "a")], parser.Feed("a <tool"));
        Assert.Equal([new ParsedPiece(ParsedKind.Content, 0, " <tools> b")], parser.Feed("s> b"));
    }

    [Theory]
    // Unknown function, wrong key order, not JSON at all: what followed the marker is content, as vLLM has it.
    [InlineData("<tool_call>\n{\"name\": \"delete_all\", \"arguments\": {}}\n</tool_call>")]
    [InlineData("<tool_call>\n{\"arguments\": {}, \"name\": \"add\"}\n</tool_call>")]
    [InlineData("<tool_call> I will not.")]
    [InlineData("x <tool_call>\n{\"name\": \"add\"")]
    public void A_marker_not_followed_by_a_call_is_content(string text)
    {
        Parsed parsed = ParseEveryWay(Hermes, text);

        Assert.Empty(parsed.Calls);
        Assert.Equal(text, parsed.Content);
    }

    [Fact]
    public void A_call_cut_off_after_its_header_keeps_what_it_had()
    {
        Parsed parsed = ParseEveryWay(Hermes, "<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 1");

        Assert.Equal("", parsed.Content);
        Assert.Equal([("add", "{\"a\": 1")], parsed.Calls);
    }

    [Fact]
    public void Content_after_a_call_is_content()
    {
        Parsed parsed = ParseEveryWay(Hermes, "<tool_call>\n{\"name\": \"add\", \"arguments\": {}}\n</tool_call>\n\nDone.");

        Assert.Equal("Done.", parsed.Content);
        Assert.Equal([("add", "{}")], parsed.Calls);
    }

    [Fact]
    public void A_reply_without_calls_is_all_content()
    {
        const string text = "No tools needed:  the answer is 4.\n\n";
        Parsed parsed = ParseEveryWay(Hermes, text);

        Assert.Equal(text, parsed.Content);
        Assert.Empty(parsed.Calls);
    }

    private static ToolCallParser Llama(bool constrained) => new Llama3JsonToolCallParser(Names, constrained);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Llama_calls_are_read_after_the_python_tag_and_separated_by_semicolons(bool constrained)
    {
        Parsed parsed = ParseEveryWay(() => Llama(constrained),
            "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}; {\"name\": \"add\", \"parameters\": {\"a\": 1}}");

        Assert.Equal("", parsed.Content);
        Assert.Equal([("get_weather", "{\"city\": \"Paris\"}"), ("add", "{\"a\": 1}")], parsed.Calls);
    }

    [Theory]
    [InlineData("{\"name\": \"nope\", \"parameters\": {}}")]
    [InlineData("{\"name\": \"add\", \"parameters\": {\"a\": }")]
    [InlineData("{\"name\": \"add\", \"parameters\": {\"a\"")]
    [InlineData("The answer is {\"name\": \"add\", \"parameters\": {}}")]
    public void An_unconstrained_llama_reply_that_is_not_a_call_is_content(string text)
    {
        Parsed parsed = ParseEveryWay(() => Llama(constrained: false), text);

        Assert.Empty(parsed.Calls);
        Assert.Equal(text, parsed.Content);
    }

    [Fact]
    public void An_unconstrained_llama_call_is_held_back_until_it_is_complete()
    {
        ToolCallParser parser = Llama(constrained: false);

        Assert.Empty(parser.Feed("{\"name\": \"add\", \"parameters\": {\"a\": 1"));
        Assert.Equal([new ParsedPiece(ParsedKind.CallStart, 0, "add"), new ParsedPiece(ParsedKind.Arguments, 0, "{\"a\": 1}")], parser.Feed("}}"));
    }

    [Fact]
    public void A_constrained_llama_call_streams_its_arguments()
    {
        ToolCallParser parser = Llama(constrained: true);

        Assert.Equal([new ParsedPiece(ParsedKind.CallStart, 0, "add"), new ParsedPiece(ParsedKind.Arguments, 0, "{\"a\": 1")],
            parser.Feed("{\"name\": \"add\", \"parameters\": {\"a\": 1"));
        Assert.Equal([new ParsedPiece(ParsedKind.Arguments, 0, "}")], parser.Feed("}}"));
    }
}
