using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace LlmServer.Playground.Tests;

/// <summary>
/// The chat page leaves sampling to the model's own defaults (its generation_config.json, which the fixture
/// writes) until the user changes a setting, and shows what those defaults are.
/// </summary>
[Collection(PlaygroundCollection.Name)]
public sealed class ChatSamplingDefaultsTests(PlaygroundFixture server)
{
    private static async Task SendAsync(IPage page, string text)
    {
        await page.Locator("#prompt").FillAsync(text);
        await page.Locator("#prompt").PressAsync("Enter");
        await Assertions.Expect(page.Locator("#send")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task Untouched_settings_show_the_models_defaults_and_are_left_out_of_the_request_until_changed()
    {
        IPage page = await server.NewPageAsync();
        var requests = new ChatRequestRecorder(page);
        await page.GotoAsync("/");
        await page.SelectOptionAsync("#model", PlaygroundFixture.ModelName);

        string temperature = PlaygroundFixture.DefaultTemperature.ToString("0.00", CultureInfo.InvariantCulture);
        await Assertions.Expect(page.Locator("#temperature-value")).ToHaveTextAsync($"{temperature} (model default)");
        await Assertions.Expect(page.Locator("#temperature")).ToHaveValueAsync(PlaygroundFixture.DefaultTemperature.ToString(CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("#top-p-value")).ToHaveTextAsync(
            $"{PlaygroundFixture.DefaultTopP.ToString("0.00", CultureInfo.InvariantCulture)} (model default)");
        await Assertions.Expect(page.Locator("#max-tokens")).ToHaveAttributeAsync("placeholder", $"{PlaygroundFixture.DefaultMaxNewTokens} (model default)");
        await Assertions.Expect(page.Locator("#temperature-reset")).ToBeHiddenAsync();
        await PlaygroundFixture.ScreenshotAsync(page, "5-chat-model-defaults");

        // Nothing touched: the server applies the model's defaults, max_new_tokens included.
        await SendAsync(page, "Say something.");
        JsonObject untouched = (await requests.WaitForAsync(1))[0];
        Assert.False(untouched.ContainsKey("temperature"), untouched.ToJsonString());
        Assert.False(untouched.ContainsKey("top_p"), untouched.ToJsonString());
        Assert.False(untouched.ContainsKey("max_tokens"), untouched.ToJsonString());
        ILocator reply = page.Locator(".message.assistant").Last;
        await Assertions.Expect(reply).ToHaveAttributeAsync("data-finish-reason", "length");
        await Assertions.Expect(reply.Locator(".message-meta")).ToContainTextAsync($"{PlaygroundFixture.DefaultMaxNewTokens} completion tokens");

        // Changed: the user's values are sent, and the control says it no longer shows the default.
        await page.Locator("#temperature").FillAsync("0.25");
        await page.Locator("#max-tokens").FillAsync("5");
        await Assertions.Expect(page.Locator("#temperature-value")).ToHaveTextAsync("0.25");
        await Assertions.Expect(page.Locator("#temperature-reset")).ToBeVisibleAsync();
        await PlaygroundFixture.ScreenshotAsync(page, "6-chat-temperature-changed");
        await SendAsync(page, "Say more.");
        JsonObject changed = (await requests.WaitForAsync(2))[1];
        Assert.Equal(0.25, changed["temperature"]!.GetValue<double>());
        Assert.Equal(5, changed["max_tokens"]!.GetValue<int>());
        Assert.False(changed.ContainsKey("top_p"), changed.ToJsonString());
        await Assertions.Expect(page.Locator(".message.assistant").Last.Locator(".message-meta")).ToContainTextAsync("5 completion tokens");

        // Reset: back to the model's default, and out of the request again.
        await page.Locator("#temperature-reset").ClickAsync();
        await page.Locator("#max-tokens-reset").ClickAsync();
        await Assertions.Expect(page.Locator("#temperature-value")).ToHaveTextAsync($"{temperature} (model default)");
        await Assertions.Expect(page.Locator("#max-tokens")).ToHaveValueAsync("");
        await SendAsync(page, "Once more.");
        JsonObject reset = (await requests.WaitForAsync(3))[2];
        Assert.False(reset.ContainsKey("temperature"), reset.ToJsonString());
        Assert.False(reset.ContainsKey("max_tokens"), reset.ToJsonString());
    }
}
