using LlmServer.Host;
using LlmServer.Inference.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace LlmServer.Playground.Tests;

/// <summary>
/// What a new user sees on the first run: the bundled demo model, served as `dotnet run` serves it, asked an
/// arithmetic question in the playground with the calculator switched on and the tool choice left at "auto". The
/// model decides to call the tool itself; the page runs it and the model answers with the result.
/// </summary>
[Collection(PlaygroundCollection.Name)]
public sealed class DemoModelCalculatorTests(PlaygroundFixture fixture) : IAsyncLifetime
{
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("llmserver-playground-demo-").FullName;
    private WebApplication _app = null!;

    public async Task InitializeAsync()
    {
        string demo = BundledDemoModel.Find() ?? throw new InvalidOperationException("models/demo is missing from the repository");
        _app = ServerApplication.Build(["--model", demo, "--port", "0", "--data-dir", _dataDirectory],
            new Dictionary<string, string?> { ["Serilog:MinimumLevel:Default"] = "Warning" });
        await _app.StartAsync();
        await _app.Services.GetRequiredService<IEngineClient>().Ready;
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    [Fact]
    public async Task The_demo_model_calls_the_calculator_by_itself_and_answers_with_the_result()
    {
        IBrowserContext context = await fixture.Browser.NewContextAsync(new() { BaseURL = _app.Urls.First(), ViewportSize = new() { Width = 1280, Height = 800 } });
        IPage page = await context.NewPageAsync();
        page.SetDefaultTimeout(45_000);
        var requests = new ChatRequestRecorder(page);
        await page.GotoAsync("/");
        await Assertions.Expect(page.Locator("#model option[value='demo']")).ToHaveCountAsync(1);
        await page.Locator("#calculator-tool").CheckAsync();
        await Assertions.Expect(page.Locator("#tool-choice")).ToHaveValueAsync("auto");
        // Its generation_config.json makes greedy decoding the default, which the page shows and leaves to the server.
        await Assertions.Expect(page.Locator("#temperature-value")).ToContainTextAsync("0.00 (model default)");

        await page.Locator("#prompt").FillAsync("What is 17 + 25?");
        await page.Locator("#send").ClickAsync();

        ILocator toolResult = page.Locator(".message.tool");
        await Assertions.Expect(toolResult).ToHaveCountAsync(1);
        await Assertions.Expect(toolResult).ToContainTextAsync("42");
        ILocator final = page.Locator(".message.tool ~ .message.assistant");
        await Assertions.Expect(final.Locator(".message-text")).ToHaveTextAsync("17 + 25 = 42");
        await Assertions.Expect(final).ToHaveAttributeAsync("data-finish-reason", "stop");
        await PlaygroundFixture.ScreenshotAsync(page, "9-demo-model-calculator");

        // The call came from the model under "auto", with the expression the question asks for.
        Assert.Equal(2, requests.Bodies.Count);
        Assert.Equal("auto", requests.Bodies[0]["tool_choice"]!.GetValue<string>());
        Assert.False(requests.Bodies[0].ContainsKey("temperature"));
        string arguments = requests.Bodies[1]["messages"]![1]!["tool_calls"]![0]!["function"]!["arguments"]!.GetValue<string>();
        Assert.Equal("17 + 25", System.Text.Json.Nodes.JsonNode.Parse(arguments)!["expression"]!.GetValue<string>());
        await context.CloseAsync();
    }
}
