using LlmServer.Inference.Tests;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace LlmServer.Playground.Tests;

[Collection(PlaygroundCollection.Name)]
public sealed class ChatPageTests(PlaygroundFixture server, ITestOutputHelper output)
{
    // Records the reply's length at every change the page makes, so the test can tell tokens painted
    // as they arrive from one paint at the end.
    private const string RecordReplyLengths = """
        () => {
          window.replyLengths = [];
          const messages = document.getElementById('messages');
          new MutationObserver(() => {
            const replies = messages.querySelectorAll('.message.assistant .message-text');
            if (replies.length > 0) window.replyLengths.push(replies[replies.length - 1].textContent.length);
          }).observe(messages, { childList: true, subtree: true, characterData: true });
        }
        """;

    private static async Task OpenChatAsync(IPage page, int maxTokens)
    {
        await page.GotoAsync("/");
        // The picker fills from GET /v1/models; the served model is the one to choose.
        await Assertions.Expect(page.Locator($"#model option[value='{PlaygroundFixture.ModelName}']")).ToHaveCountAsync(1);
        await page.SelectOptionAsync("#model", PlaygroundFixture.ModelName);
        await page.Locator("#temperature").FillAsync("0");
        await page.Locator("#max-tokens").FillAsync(maxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_reply_streams_in_token_by_token_and_shows_its_finish_reason_and_usage()
    {
        IPage page = await server.NewPageAsync();
        await OpenChatAsync(page, maxTokens: 48);
        await page.EvaluateAsync(RecordReplyLengths);

        await page.Locator("#prompt").FillAsync("Write a few words about cats.");
        await page.Locator("#prompt").PressAsync("Enter");

        ILocator reply = page.Locator(".message.assistant").Last;
        await Assertions.Expect(reply).ToHaveAttributeAsync("data-finish-reason", "length");
        await Assertions.Expect(reply.Locator(".message-meta")).ToContainTextAsync("48 completion tokens");
        await Assertions.Expect(page.Locator("#send")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#stop")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator(".message.user")).ToHaveTextAsync(new System.Text.RegularExpressions.Regex("Write a few words about cats\\."));
        await PlaygroundFixture.ScreenshotAsync(page, "1-chat-streamed");

        int[] lengths = await page.EvaluateAsync<int[]>("() => window.replyLengths");
        string text = await reply.Locator(".message-text").TextContentAsync() ?? "";
        int[] distinct = [.. lengths.Where(l => l > 0).Distinct()];
        output.WriteLine($"reply of {text.Length} characters painted at lengths {string.Join(", ", distinct)}");
        Assert.True(text.Length > 0, "the reply is empty");
        Assert.True(distinct.Length >= 4, $"the reply appeared in {distinct.Length} paints ({string.Join(", ", distinct)}), not token by token");
        Assert.Equal(text.Length, distinct[^1]);
        Assert.Equal(distinct.Order(), distinct);
    }

    [Fact]
    public async Task Stop_ends_the_stream_in_the_page_and_aborts_the_request_on_the_server()
    {
        double abortedBefore = await server.FinishedRequestsAsync("aborted");
        IPage page = await server.NewPageAsync();
        await OpenChatAsync(page, maxTokens: 1900);

        await page.Locator("#prompt").FillAsync("Tell me a very long story.");
        await page.Locator("#send").ClickAsync();
        ILocator replyText = page.Locator(".message.assistant .message-text").Last;
        await page.WaitForFunctionAsync(
            "() => { const r = document.querySelectorAll('.message.assistant .message-text'); return r.length > 0 && r[r.length - 1].textContent.length > 0; }");
        await page.Locator("#stop").ClickAsync();

        ILocator reply = page.Locator(".message.assistant").Last;
        await Assertions.Expect(reply).ToHaveClassAsync(new System.Text.RegularExpressions.Regex(@"\bstopped\b"));
        await Assertions.Expect(reply.Locator(".message-meta")).ToContainTextAsync("stopped after");
        await Assertions.Expect(page.Locator("#send")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#stop")).ToBeHiddenAsync();
        int lengthAtStop = (await replyText.TextContentAsync() ?? "").Length;

        // The page closing its connection is all the server hears; it must abort the engine request, not let it run to max_tokens.
        double abortedAfter = abortedBefore;
        await Poll.UntilAsync(async () => (abortedAfter = await server.FinishedRequestsAsync("aborted")) > abortedBefore,
            TimeSpan.FromSeconds(10), "the server to abort the request");
        // The server has stopped generating, so no token is left on its way: the reply is all the page will ever show.
        int lengthLater = (await replyText.TextContentAsync() ?? "").Length;
        await PlaygroundFixture.ScreenshotAsync(page, "2-chat-stopped");
        output.WriteLine($"stopped at {lengthAtStop} characters");
        Assert.True(lengthAtStop > 0);
        Assert.Equal(lengthAtStop, lengthLater);
        Assert.Null(await reply.GetAttributeAsync("data-finish-reason"));
        Assert.Equal(abortedBefore + 1, abortedAfter);
    }

    [Fact]
    public async Task A_refused_request_shows_the_servers_error_message_and_gives_the_prompt_back()
    {
        IPage page = await server.NewPageAsync();
        await OpenChatAsync(page, maxTokens: 5000);

        await page.Locator("#prompt").FillAsync("Hello");
        await page.Locator("#send").ClickAsync();

        ILocator reply = page.Locator(".message.assistant").Last;
        await Assertions.Expect(reply).ToHaveClassAsync(new System.Text.RegularExpressions.Regex(@"\bfailed\b"));
        await Assertions.Expect(reply.Locator(".message-meta")).ToHaveTextAsync("error 400");
        string message = await reply.Locator(".message-error").TextContentAsync() ?? "";
        output.WriteLine(message);
        Assert.Contains("max_tokens", message);
        Assert.DoesNotContain("{", message);
        await Assertions.Expect(page.Locator("#prompt")).ToHaveValueAsync("Hello");
    }
}
