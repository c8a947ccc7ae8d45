using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using LlmServer.Host;
using LlmServer.Inference.Tests;
using Microsoft.Playwright;

namespace LlmServer.Playground.Tests;

/// <summary>
/// What a new user sees on the first run: the bundled demo model asked an arithmetic question in the playground with
/// the calculator switched on and the tool choice left at "auto". The model decides to call the tool itself; the page
/// runs it and the model answers with the result.
/// </summary>
/// <remarks>
/// The demo model is served by llmserver in a process of its own, as `dotnet run` serves it. A second server in this
/// process would create a second meter named like the fixture's engine meter, and disposing it stops the fixture's
/// metrics with it (OpenTelemetry .NET's open bug 6412), which the Stop test reads.
/// </remarks>
[Collection(PlaygroundCollection.Name)]
public sealed class DemoModelCalculatorTests(PlaygroundFixture fixture) : IAsyncLifetime
{
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("llmserver-playground-demo-").FullName;
    private readonly System.Text.StringBuilder _serverOutput = new();
    private Process _server = null!;
    private Uri _address = null!;

    public async Task InitializeAsync()
    {
        string demo = BundledDemoModel.Find() ?? throw new InvalidOperationException("models/demo is missing from the repository");
        int port = FreePort();
        _address = new Uri($"http://127.0.0.1:{port}/");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "llmserver.dll"), "serve", "--model", demo,
            "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--data-dir", _dataDirectory })
        {
            start.ArgumentList.Add(arg);
        }
        _server = Process.Start(start)!;
        // Both pipes are drained, or a chatty server would block on a full pipe.
        _server.OutputDataReceived += (_, e) => { lock (_serverOutput) { _serverOutput.AppendLine(e.Data); } };
        _server.ErrorDataReceived += (_, e) => { lock (_serverOutput) { _serverOutput.AppendLine(e.Data); } };
        _server.BeginOutputReadLine();
        _server.BeginErrorReadLine();
        using var http = new HttpClient { BaseAddress = _address, Timeout = TimeSpan.FromSeconds(5) };
        await Poll.UntilAsync(async () =>
        {
            Assert.False(_server.HasExited, $"the demo server exited: {ServerOutput}");
            try
            {
                using HttpResponseMessage ready = await http.GetAsync("/health/ready");
                return ready.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), "the demo model's server to be ready");
    }

    public async Task DisposeAsync()
    {
        _server.Kill(entireProcessTree: true);
        await _server.WaitForExitAsync();
        _server.Dispose();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    private string ServerOutput
    {
        get
        {
            lock (_serverOutput)
            {
                return _serverOutput.ToString();
            }
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task The_demo_model_calls_the_calculator_by_itself_and_answers_with_the_result()
    {
        IBrowserContext context = await fixture.Browser.NewContextAsync(new() { BaseURL = _address.ToString(), ViewportSize = new() { Width = 1280, Height = 800 } });
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
