using System.Text.Json.Nodes;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace LlmServer.Playground.Tests;

/// <summary>
/// The calculator tool and JSON replies in the chat page, against the real server. The fixture's random weights
/// would not call a tool on their own, so the tool test picks "required", which the server enforces with a
/// grammar: the call is real, its expression whatever the weights write.
/// </summary>
[Collection(PlaygroundCollection.Name)]
public sealed class ChatToolCallTests(PlaygroundFixture server, ITestOutputHelper output)
{
    /// <summary>The tool exactly as the page must send it: the demo model is fine-tuned on this definition.</summary>
    private static readonly JsonNode CalculatorTool = JsonNode.Parse("""
        {"type":"function","function":{"name":"calculator","description":"Evaluates an arithmetic expression and returns the result.",
         "parameters":{"type":"object","properties":{"expression":{"type":"string","description":"An arithmetic expression such as 17 + 25"}},"required":["expression"]}}}
        """)!;

    private static async Task<IPage> OpenChatAsync(PlaygroundFixture server, int maxTokens)
    {
        IPage page = await server.NewPageAsync();
        await page.GotoAsync("/");
        await Assertions.Expect(page.Locator($"#model option[value='{PlaygroundFixture.ModelName}']")).ToHaveCountAsync(1);
        await page.SelectOptionAsync("#model", PlaygroundFixture.ModelName);
        await page.Locator("#temperature").FillAsync("0");
        await page.Locator("#max-tokens").FillAsync(maxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return page;
    }

    [Fact]
    public async Task A_tool_call_is_shown_run_in_the_browser_and_its_result_sent_back_for_the_final_answer()
    {
        IPage page = await OpenChatAsync(server, maxTokens: 128);
        var requests = new ChatRequestRecorder(page);
        await Assertions.Expect(page.Locator("#tool-choice")).ToBeDisabledAsync();
        await page.Locator("#calculator-tool").CheckAsync();
        await page.SelectOptionAsync("#tool-choice", "required");

        await page.Locator("#prompt").FillAsync("What is 17 + 25?");
        await page.Locator("#send").ClickAsync();

        // The call, its result, then the model's reply to the result.
        ILocator toolResult = page.Locator(".message.tool");
        await Assertions.Expect(toolResult).ToHaveCountAsync(1);
        ILocator final = page.Locator(".message.tool ~ .message.assistant");
        await Assertions.Expect(final).ToHaveCountAsync(1);
        await Assertions.Expect(final).ToHaveAttributeAsync("data-finish-reason", new System.Text.RegularExpressions.Regex(".+"));
        await Assertions.Expect(page.Locator("#send")).ToBeVisibleAsync();
        await PlaygroundFixture.ScreenshotAsync(page, "7-chat-tool-call");

        IReadOnlyList<JsonObject> bodies = requests.Bodies;
        Assert.Equal(2, bodies.Count);
        JsonObject first = bodies[0], second = bodies[1];
        Assert.True(JsonNode.DeepEquals(CalculatorTool, first["tools"]![0]), first["tools"]!.ToJsonString());
        Assert.Equal("required", first["tool_choice"]!.GetValue<string>());
        // The follow-up lets the model answer in words instead of forcing another call.
        Assert.Equal("auto", second["tool_choice"]!.GetValue<string>());
        Assert.True(JsonNode.DeepEquals(CalculatorTool, second["tools"]![0]));

        // The follow-up carries the conversation on: the question, the assistant's call, the tool's answer to it.
        JsonArray messages = second["messages"]!.AsArray();
        Assert.Equal(3, messages.Count);
        Assert.Equal("What is 17 + 25?", messages[0]!["content"]!.GetValue<string>());
        JsonObject assistant = messages[1]!.AsObject();
        Assert.Equal("assistant", assistant["role"]!.GetValue<string>());
        Assert.True(assistant.ContainsKey("content") && assistant["content"] is null, assistant.ToJsonString());
        JsonObject call = Assert.Single(assistant["tool_calls"]!.AsArray())!.AsObject();
        string callId = call["id"]!.GetValue<string>();
        Assert.StartsWith("call_", callId);
        Assert.Equal("function", call["type"]!.GetValue<string>());
        Assert.Equal("calculator", call["function"]!["name"]!.GetValue<string>());
        string arguments = call["function"]!["arguments"]!.GetValue<string>();
        string expression = JsonNode.Parse(arguments)!["expression"]!.GetValue<string>();
        JsonObject tool = messages[2]!.AsObject();
        Assert.Equal("tool", tool["role"]!.GetValue<string>());
        Assert.Equal(callId, tool["tool_call_id"]!.GetValue<string>());
        string toolContent = tool["content"]!.GetValue<string>();
        output.WriteLine($"the model asked for {expression}; the calculator answered {toolContent}");

        // The call's block: the function's name and its arguments as pretty JSON.
        ILocator block = page.Locator(".message.assistant .tool-call");
        await Assertions.Expect(block).ToHaveCountAsync(1);
        await Assertions.Expect(block.Locator(".tool-call-name")).ToHaveTextAsync("calculator");
        string shownArguments = await block.Locator(".tool-call-arguments").TextContentAsync() ?? "";
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(arguments), JsonNode.Parse(shownArguments)), shownArguments);
        Assert.Contains("\n  \"expression\"", shownArguments);

        // The result block shows what was sent back, which is the calculator's answer for that expression.
        await Assertions.Expect(toolResult).ToHaveAttributeAsync("data-tool-call-id", callId);
        await Assertions.Expect(toolResult.Locator(".tool-result")).ToHaveTextAsync(toolContent);
        string expected = await page.EvaluateAsync<string>(
            "async ([name, args]) => (await import('/js/calculator-tool.js')).runToolCall(name, args).content", new[] { "calculator", arguments });
        Assert.Equal(expected, toolContent);
    }

    /// <summary>
    /// A model that calls a tool in every reply. The server cannot be made to do that (the follow-ups are "auto",
    /// and random weights do not call on their own), so this test alone answers the page's requests itself.
    /// </summary>
    [Fact]
    public async Task A_model_that_keeps_calling_gets_three_follow_ups_and_an_unknown_tool_is_answered_saying_so()
    {
        IPage page = await OpenChatAsync(server, maxTokens: 16);
        var requests = new ChatRequestRecorder(page);
        int served = 0;
        await page.RouteAsync("**/v1/chat/completions", route =>
        {
            int call = Interlocked.Increment(ref served);
            string arguments = System.Text.Json.JsonSerializer.Serialize("""{"city": "Paris"}""");
            string body =
                $$$"""data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_{{{call}}}","type":"function","function":{"name":"weather","arguments":{{{arguments}}}}}]},"finish_reason":null}]}""" + "\n\n" +
                """data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}""" + "\n\n" +
                "data: [DONE]\n\n";
            return route.FulfillAsync(new() { Status = 200, ContentType = "text/event-stream", Body = body });
        });
        await page.Locator("#calculator-tool").CheckAsync();

        await page.Locator("#prompt").FillAsync("What is the weather in Paris?");
        await page.Locator("#send").ClickAsync();

        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("after 3 follow-ups");
        await Assertions.Expect(page.Locator("#send")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator(".message.tool")).ToHaveCountAsync(4);
        IReadOnlyList<JsonObject> bodies = requests.Bodies;
        Assert.Equal(4, bodies.Count);
        Assert.Equal(4, served);
        // The last follow-up carries every call so far, each answered by its own tool message.
        JsonArray messages = bodies[^1]["messages"]!.AsArray();
        Assert.Equal(1 + 2 * 3, messages.Count);
        for (int round = 1; round <= 3; round++)
        {
            Assert.Equal($"call_{round}", messages[2 * round - 1]!["tool_calls"]![0]!["id"]!.GetValue<string>());
            Assert.Equal($"call_{round}", messages[2 * round]!["tool_call_id"]!.GetValue<string>());
            Assert.Equal("Error: there is no tool named 'weather'; the only tool is 'calculator'.", messages[2 * round]!["content"]!.GetValue<string>());
        }
        await Assertions.Expect(page.Locator(".message.tool").Last).ToHaveAttributeAsync("data-ok", "false");
    }

    public static TheoryData<string, string> Evaluations => new()
    {
        { "17 + 25", "42" },
        { " (1.5 + 2) * 4 ", "14" },
        { "10 / 4 - -1", "3.5" },
        { "0.1 + 0.2", "0.3" },
        { "10 / 3", "3.333333333333" },
        { "2 * (3 + (4 - 1)) / 3", "4" },
        { "-.5 * 8", "-4" },
        { "1 / 0", "Error: cannot evaluate '1 / 0': division by zero." },
        { "2 ** 3", "Error: cannot evaluate '2 ** 3': unexpected '*'." },
        { "(1 + 2", "Error: cannot evaluate '(1 + 2': a parenthesis is not closed." },
        { "alert(1)", "Error: cannot evaluate 'alert(1)': cannot read 'alert(1)'." },
        { "", "Error: cannot evaluate '': the expression is empty." },
    };

    [Theory]
    [MemberData(nameof(Evaluations))]
    public async Task The_calculator_evaluates_arithmetic_and_says_what_it_cannot_evaluate(string expression, string expected)
    {
        IPage page = await server.NewPageAsync();
        await page.GotoAsync("/");
        string arguments = new JsonObject { ["expression"] = expression }.ToJsonString();
        string result = await page.EvaluateAsync<string>(
            "async ([name, args]) => (await import('/js/calculator-tool.js')).runToolCall(name, args).content", new[] { "calculator", arguments });
        Assert.Equal(expected, result);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_call_to_an_unknown_tool_or_with_unreadable_arguments_still_gets_an_answer()
    {
        IPage page = await server.NewPageAsync();
        await page.GotoAsync("/");
        string[] results = await page.EvaluateAsync<string[]>("""
            async () => {
              const { runToolCall } = await import('/js/calculator-tool.js');
              return [runToolCall('weather', '{"city":"Paris"}').content, runToolCall('calculator', '{"expr').content,
                      runToolCall('calculator', '{"expression": 42}').content];
            }
            """);
        Assert.Equal("Error: there is no tool named 'weather'; the only tool is 'calculator'.", results[0]);
        Assert.Equal("Error: the arguments are not a JSON object.", results[1]);
        Assert.Equal("Error: the arguments need an \"expression\" string.", results[2]);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task A_json_reply_streams_as_text_and_is_then_shown_pretty_printed()
    {
        IPage page = await OpenChatAsync(server, maxTokens: 200);
        var requests = new ChatRequestRecorder(page);
        await page.Locator("#json-reply").CheckAsync();
        // What the reply's element holds at each change: raw text while it streams, a code block at the end.
        await page.EvaluateAsync("""
            () => {
              window.replyStates = [];
              const messages = document.getElementById('messages');
              new MutationObserver(() => {
                const replies = messages.querySelectorAll('.message.assistant .message-text');
                if (replies.length === 0) return;
                const reply = replies[replies.length - 1];
                window.replyStates.push({ text: reply.textContent, pretty: reply.querySelector('pre.json') !== null });
              }).observe(messages, { childList: true, subtree: true, characterData: true });
            }
            """);

        await page.Locator("#prompt").FillAsync("Describe a cat as JSON.");
        await page.Locator("#send").ClickAsync();

        ILocator reply = page.Locator(".message.assistant").Last;
        await Assertions.Expect(reply).ToHaveAttributeAsync("data-finish-reason", new System.Text.RegularExpressions.Regex(".+"));
        await Assertions.Expect(reply.Locator("pre.code.json")).ToHaveCountAsync(1);
        await PlaygroundFixture.ScreenshotAsync(page, "8-chat-json-reply");

        JsonObject body = Assert.Single(requests.Bodies);
        Assert.Equal("json_object", body["response_format"]!["type"]!.GetValue<string>());
        JsonArray states = JsonNode.Parse(await page.EvaluateAsync<string>("() => JSON.stringify(window.replyStates)"))!.AsArray();
        string[] raw = [.. states.Where(s => !s!["pretty"]!.GetValue<bool>()).Select(s => s!["text"]!.GetValue<string>()).Where(t => t.Length > 0)];
        string shown = states[^1]!["text"]!.GetValue<string>();
        output.WriteLine($"streamed in {raw.Length} paints, shown as:\n{shown}");
        Assert.True(states[^1]!["pretty"]!.GetValue<bool>());
        Assert.True(raw.Length >= 2, $"the reply was not shown as it streamed ({raw.Length} paints)");
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(raw[^1]), JsonNode.Parse(shown)), $"raw {raw[^1]} / shown {shown}");
        string pretty = await page.EvaluateAsync<string>("text => JSON.stringify(JSON.parse(text), null, 2)", raw[^1]);
        Assert.Equal(pretty, shown);
    }
}
