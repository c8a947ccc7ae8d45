using System.Net.Http.Headers;
using System.Text;
using LlmServer.Bench.Prometheus;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace LlmServer.Playground.Tests;

/// <summary>
/// The real server on a loopback port (a browser cannot reach an in-memory test server) and one
/// headless chromium for all the playground tests.
/// </summary>
public sealed class PlaygroundFixture : IAsyncLifetime
{
    public const string AdminKey = "sk-playground-admin";
    public const string ModelName = "playground-gpt2";

    /// <summary>
    /// Random weights, 4 layers 256 wide, 2048 positions. The fixture model (128 positions) finishes
    /// any reply within a fraction of a second, too soon to press Stop in the middle of it; this one
    /// costs a few milliseconds per token and, with room for 1,900 new tokens, keeps generating for
    /// many seconds: Stop pressed after the first token always lands mid-stream, whatever the machine's
    /// load. The chat tests sample greedily (temperature 0) so every run sees the same text.
    /// </summary>
    private static readonly Gpt2Config Shape = new() { LayerCount = 4, EmbeddingSize = 256, HeadCount = 4, MaxPositions = 2048 };

    /// <summary>
    /// The model's own sampling recommendation (its generation_config.json), which the page shows and leaves to
    /// the server until the user changes a setting. Values no control starts at, so a page that showed its own
    /// starting value instead of the model's would fail.
    /// </summary>
    public const double DefaultTemperature = 0.7;
    public const double DefaultTopP = 0.9;
    public const int DefaultMaxNewTokens = 24;

    private readonly string _root = Path.Combine(Path.GetTempPath(), $"llmserver-playground-{Guid.NewGuid():N}");
    private WebApplication _app = null!;
    private IPlaywright _playwright = null!;

    public IBrowser Browser { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public Uri BaseAddress => Http.BaseAddress!;

    /// <summary>Where the tests leave their screenshots: TestResults/playground beside the test assembly.</summary>
    public static string ScreenshotDirectory { get; } = Path.Combine(AppContext.BaseDirectory, "TestResults", "playground");

    public async Task InitializeAsync()
    {
        // Installing chromium (when missing) and writing the model take the longest; neither needs the other.
        Task<string> chromium = Task.Run(() => Chromium.Path);
        string model = Path.Combine(_root, ModelName);
        await Task.Run(() => RandomCheckpoint.Create(Shape, model, TestFixtures.ModelDirectory("gpt2-random-2l-64d"), seed: 7));
        await File.WriteAllTextAsync(Path.Combine(model, "generation_config.json"), string.Create(System.Globalization.CultureInfo.InvariantCulture,
            $$"""{"eos_token_id": 50256, "temperature": {{DefaultTemperature}}, "top_p": {{DefaultTopP}}, "max_new_tokens": {{DefaultMaxNewTokens}}}"""));

        _app = ServerApplication.Build(["--model", model, "--port", "0", "--kv-cache-memory", "256MiB",
            "--admin-key", AdminKey, "--data-dir", Path.Combine(_root, "data")],
            // A line per request would bury the test's own output; warnings and errors still show.
            new Dictionary<string, string?> { ["Serilog:MinimumLevel:Default"] = "Warning" });
        await _app.StartAsync();
        Http = new HttpClient { BaseAddress = new Uri(_app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) };
        await _app.Services.GetRequiredService<IEngineClient>().Ready;

        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = await chromium, Headless = true });
        Directory.CreateDirectory(ScreenshotDirectory);
        // Expect's own default is 5 s, less than a 48-token reply may take on a loaded 2-core machine.
        Assertions.SetDefaultExpectTimeout(30_000);
    }

    public async Task<IPage> NewPageAsync()
    {
        IBrowserContext context = await Browser.NewContextAsync(new() { BaseURL = BaseAddress.ToString(), ViewportSize = new() { Width = 1280, Height = 800 } });
        IPage page = await context.NewPageAsync();
        // Generous: CI runs the other test assemblies beside this one on the same few cores.
        page.SetDefaultTimeout(45_000);
        return page;
    }

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotDirectory, name + ".png"), FullPage = true });

    /// <summary>llmserver_request_success_total for one finish reason, as Prometheus scrapes it (0 before the first such request).</summary>
    public async Task<double> FinishedRequestsAsync(string finishReason)
    {
        PrometheusScrape scrape = await PrometheusScrape.ReadAsync(Http, CancellationToken.None);
        return scrape.Sum("llmserver_request_success_total", new Dictionary<string, string> { ["finished_reason"] = finishReason });
    }

    public async Task<(System.Net.HttpStatusCode Status, string Body)> AdminAsync(HttpMethod method, string path, HttpContent? content = null)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", AdminKey);
        using HttpResponseMessage response = await Http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    public async Task<string> UploadAsync(string jsonl, string filename)
    {
        using var form = new MultipartFormDataContent();
        form.Add(new StringContent("fine-tune"), "purpose");
        form.Add(new ByteArrayContent(Encoding.UTF8.GetBytes(jsonl)), "file", filename);
        var (status, body) = await AdminAsync(HttpMethod.Post, "/v1/files", form);
        Assert.True(status == System.Net.HttpStatusCode.OK, $"upload {filename}: {(int)status} {body}");
        return System.Text.Json.JsonDocument.Parse(body).RootElement.GetProperty("id").GetString()!;
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null)
        {
            await Browser.DisposeAsync();
        }
        _playwright?.Dispose();
        Http?.Dispose();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }
}
