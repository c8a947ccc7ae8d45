using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace LlmServer.Playground.Tests;

/// <summary>
/// Servers of their own, never beside the playground's: the engine's meters are found by name
/// process-wide, and an engine disposed while another lives ends the other's metric series too.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CrossOriginCollection
{
    public const string Name = "cross-origin";
}

/// <summary>
/// A web app's page on one origin calls the API of servers on other origins with fetch: Chromium
/// itself sends the preflight and decides whether the page may read the answer.
/// </summary>
[Collection(CrossOriginCollection.Name)]
public sealed class CrossOriginBrowserTests : IAsyncLifetime
{
    private const string Key = "sk-cross-origin";

    // Headers as the OpenAI JavaScript SDK sends them, so the browser's preflight asks for the same.
    private const string FetchChat = """
        async ({ url, key }) => {
          const headers = { 'Content-Type': 'application/json', 'x-stainless-lang': 'js', 'x-stainless-os': 'Linux' };
          if (key) headers['Authorization'] = 'Bearer ' + key;
          try {
            const response = await fetch(url + '/v1/chat/completions', { method: 'POST', headers, body: JSON.stringify({
              model: 'gpt2-random-2l-64d', messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4, stream: true }) });
            const reader = response.body.getReader();
            const decoder = new TextDecoder();
            let body = '';
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              body += decoder.decode(value, { stream: true });
            }
            return { status: response.status, body, requestId: response.headers.get('x-request-id'), error: null };
          } catch (e) {
            return { status: 0, body: '', requestId: null, error: String(e) };
          }
        }
        """;

    private WebApplication _webApp = null!;
    private IPlaywright _playwright = null!;
    private IBrowser _browser = null!;

    /// <summary>The web app's origin: a plain page on a server of its own.</summary>
    private string WebAppOrigin => new Uri(_webApp.Urls.First()).GetLeftPart(UriPartial.Authority);

    public async Task InitializeAsync()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _webApp = builder.Build();
        _webApp.MapGet("/", () => Results.Content("<!doctype html><title>web app</title><p>another origin</p>", "text/html"));
        await _webApp.StartAsync();
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = Chromium.Path, Headless = true });
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
        await _webApp.StopAsync();
        await _webApp.DisposeAsync();
    }

    private sealed record FetchResult(int Status, string Body, string? RequestId, string? Error);

    [Fact]
    public async Task A_page_streams_a_keyed_chat_completion_from_a_server_that_allows_its_origin_and_from_no_other()
    {
        await using ApiServer allowing = await ApiServer.StartAsync("--api-key", Key, "--allowed-origins", WebAppOrigin);
        await using ApiServer closed = await ApiServer.StartAsync("--api-key", Key);
        IPage page = await _browser.NewPageAsync();
        await page.GotoAsync(WebAppOrigin + "/");

        FetchResult streamed = await FetchAsync(page, allowing, Key);
        Assert.Null(streamed.Error);
        Assert.Equal(200, streamed.Status);
        Assert.Contains("chat.completion.chunk", streamed.Body);
        Assert.EndsWith("data: [DONE]", streamed.Body.TrimEnd());
        Assert.NotNull(streamed.RequestId);  // exposed to the page, not only sent

        // OpenAI's error body is readable to the page, so an app can show why.
        FetchResult refused = await FetchAsync(page, allowing, key: null);
        Assert.Null(refused.Error);
        Assert.Equal(401, refused.Status);
        Assert.Equal("invalid_request_error", JsonDocument.Parse(refused.Body).RootElement.GetProperty("error").GetProperty("type").GetString());

        FetchResult blocked = await FetchAsync(page, closed, Key);
        Assert.Equal(0, blocked.Status);
        Assert.Contains("Failed to fetch", blocked.Error);
    }

    private static async Task<FetchResult> FetchAsync(IPage page, ApiServer server, string? key)
    {
        JsonElement result = await page.EvaluateAsync<JsonElement>(FetchChat, new { url = server.Origin, key });
        string? Text(string name) => result.GetProperty(name).ValueKind == JsonValueKind.Null ? null : result.GetProperty(name).GetString();
        return new FetchResult(result.GetProperty("status").GetInt32(), Text("body")!, Text("requestId"), Text("error"));
    }

    /// <summary>The API on a port of its own, serving the fixture model.</summary>
    private sealed class ApiServer(WebApplication app) : IAsyncDisposable
    {
        public string Origin { get; } = new Uri(app.Urls.First()).GetLeftPart(UriPartial.Authority);

        public static async Task<ApiServer> StartAsync(params string[] flags)
        {
            WebApplication app = ServerApplication.Build(
                ["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB", "--port", "0", .. flags],
                new Dictionary<string, string?> { ["Serilog:MinimumLevel:Default"] = "Warning" });
            await app.StartAsync();
            await app.Services.GetRequiredService<IEngineClient>().Ready;
            return new ApiServer(app);
        }

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }
}
