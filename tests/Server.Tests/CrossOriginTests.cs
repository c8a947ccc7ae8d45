using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>What a browser sends and reads, over HTTP to a real server: preflights, then the requests themselves.</summary>
internal static class BrowserRequests
{
    public const string Origin = "http://app.example:3000";

    /// <summary>The headers the OpenAI JavaScript SDK sends with a chat request, as a browser lists them in a preflight.</summary>
    public const string SdkHeaders = "authorization, content-type, openai-organization, x-stainless-arch, x-stainless-lang, "
        + "x-stainless-os, x-stainless-package-version, x-stainless-retry-count, x-stainless-runtime, x-stainless-runtime-version";

    public static async Task<HttpResponseMessage> PreflightAsync(HttpClient http, string origin, string path = "/v1/chat/completions",
        string method = "POST", string headers = SdkHeaders)
    {
        using var preflight = new HttpRequestMessage(HttpMethod.Options, path);
        preflight.Headers.Add("Origin", origin);
        preflight.Headers.Add("Access-Control-Request-Method", method);
        preflight.Headers.Add("Access-Control-Request-Headers", headers);
        return await http.SendAsync(preflight);
    }

    public static HttpRequestMessage Chat(string origin, string? key, bool stream)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Headers = { { "Origin", origin } },
            Content = new StringContent(JsonSerializer.Serialize(new
            {
                model = "gpt2-random-2l-64d",
                messages = new[] { new { role = "user", content = "Hello" } },
                max_tokens = 3,
                stream,
            }), Encoding.UTF8, "application/json"),
        };
        if (key is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }
        return request;
    }

    public static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out IEnumerable<string>? values) ? string.Join(",", values) : null;

    /// <summary>A header's comma-separated entries, lower-cased: browsers compare header names case-insensitively.</summary>
    public static IReadOnlyList<string> Entries(HttpResponseMessage response, string name) =>
        Header(response, name)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(e => e.ToLowerInvariant()).ToList() ?? [];

    public static IEnumerable<string> CorsHeaders(HttpResponseMessage response) =>
        response.Headers.Concat(response.Content.Headers).Select(h => h.Key).Where(k => k.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
}

/// <summary>--allowed-origins set: browser apps on those origins call the API, keyed, streaming included; others get nothing to read.</summary>
public sealed class CrossOriginTests : IAsyncLifetime
{
    private const string Key = "sk-cors-test";
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB",
            "--api-key", Key, "--allowed-origins", $"{BrowserRequests.Origin}, https://chat.example"]);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_preflight_from_an_allowed_origin_is_answered_before_the_key_check_with_what_the_sdk_sends()
    {
        // A preflight carries no Authorization header, although the server requires a key.
        using HttpResponseMessage preflight = await BrowserRequests.PreflightAsync(_server.Http, BrowserRequests.Origin);

        Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);
        Assert.Equal(BrowserRequests.Origin, BrowserRequests.Header(preflight, "Access-Control-Allow-Origin"));
        Assert.Contains("post", BrowserRequests.Entries(preflight, "Access-Control-Allow-Methods"));
        // Every requested header by name: a literal "*" would not cover Authorization.
        IReadOnlyList<string> allowed = BrowserRequests.Entries(preflight, "Access-Control-Allow-Headers");
        Assert.All(BrowserRequests.SdkHeaders.Split(", "), header => Assert.Contains(header, allowed));
        Assert.Equal("600", BrowserRequests.Header(preflight, "Access-Control-Max-Age"));

        using HttpResponseMessage second = await BrowserRequests.PreflightAsync(_server.Http, "https://chat.example", "/v1/models", "GET", "authorization");
        Assert.Equal("https://chat.example", BrowserRequests.Header(second, "Access-Control-Allow-Origin"));
    }

    [Theory]
    [InlineData("http://evil.example")]
    [InlineData("http://app.example:3001")]   // another port is another origin
    [InlineData("https://app.example:3000")]  // and so is another scheme
    public async Task A_preflight_from_another_origin_gets_no_allow_headers(string origin)
    {
        using HttpResponseMessage preflight = await BrowserRequests.PreflightAsync(_server.Http, origin);

        Assert.Empty(BrowserRequests.CorsHeaders(preflight));

        using HttpRequestMessage request = BrowserRequests.Chat(origin, Key, stream: false);
        using HttpResponseMessage response = await _server.Http.SendAsync(request);
        Assert.Null(BrowserRequests.Header(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task A_streamed_chat_completion_from_an_allowed_origin_carries_the_allow_header_and_every_event()
    {
        using HttpRequestMessage request = BrowserRequests.Chat(BrowserRequests.Origin, Key, stream: true);
        using HttpResponseMessage response = await _server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(BrowserRequests.Origin, BrowserRequests.Header(response, "Access-Control-Allow-Origin"));
        Assert.Contains("x-request-id", BrowserRequests.Entries(response, "Access-Control-Expose-Headers"));
        string body = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"object\":\"chat.completion.chunk\"", body);
        Assert.EndsWith("data: [DONE]", body.TrimEnd());
    }

    [Fact]
    public async Task Refusals_on_an_allowed_origin_carry_the_allow_header_so_the_app_can_read_the_error_body()
    {
        using HttpRequestMessage noKey = BrowserRequests.Chat(BrowserRequests.Origin, key: null, stream: true);
        using HttpResponseMessage unauthorized = await _server.Http.SendAsync(noKey);
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);
        Assert.Equal(BrowserRequests.Origin, BrowserRequests.Header(unauthorized, "Access-Control-Allow-Origin"));
        Assert.True(JsonDocument.Parse(await unauthorized.Content.ReadAsStringAsync()).RootElement.TryGetProperty("error", out _));

        using var badRequest = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Headers = { { "Origin", BrowserRequests.Origin }, { "Authorization", $"Bearer {Key}" } },
            Content = new StringContent("""{"model": "gpt2-random-2l-64d", "messages": [], "max_tokens": -1}""", Encoding.UTF8, "application/json"),
        };
        using HttpResponseMessage invalid = await _server.Http.SendAsync(badRequest);
        Assert.Equal(HttpStatusCode.BadRequest, invalid.StatusCode);
        Assert.Equal(BrowserRequests.Origin, BrowserRequests.Header(invalid, "Access-Control-Allow-Origin"));
    }
}

/// <summary>Without --allowed-origins (the default) no response carries a CORS header.</summary>
[Collection(ServerCollection.Name)]
public sealed class CrossOriginOffByDefaultTests(ServerFixture server)
{
    [Fact]
    public async Task Neither_a_preflight_nor_a_request_from_another_origin_gets_a_cors_header()
    {
        using HttpResponseMessage preflight = await BrowserRequests.PreflightAsync(server.Http, BrowserRequests.Origin);
        Assert.NotEqual(HttpStatusCode.NoContent, preflight.StatusCode);
        Assert.Empty(BrowserRequests.CorsHeaders(preflight));

        using HttpRequestMessage request = BrowserRequests.Chat(BrowserRequests.Origin, key: null, stream: false);
        using HttpResponseMessage response = await server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Empty(BrowserRequests.CorsHeaders(response));
    }
}

/// <summary>The other settings, each on a server of its own.</summary>
public sealed class CrossOriginSettingsTests
{
    private static Task<RunningServer> StartAsync(params string[] flags) =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB", .. flags]);

    [Fact]
    public async Task A_star_allows_every_origin_with_a_star()
    {
        await using RunningServer server = await StartAsync("--allowed-origins", "*");

        using HttpResponseMessage preflight = await BrowserRequests.PreflightAsync(server.Http, "https://anywhere.example");
        Assert.Equal(HttpStatusCode.NoContent, preflight.StatusCode);
        Assert.Equal("*", BrowserRequests.Header(preflight, "Access-Control-Allow-Origin"));

        using HttpRequestMessage request = BrowserRequests.Chat("https://anywhere.example", key: null, stream: false);
        using HttpResponseMessage response = await server.Http.SendAsync(request);
        Assert.Equal("*", BrowserRequests.Header(response, "Access-Control-Allow-Origin"));
    }

    [Fact]
    public async Task Listed_methods_and_headers_allow_only_those()
    {
        await using RunningServer server = await StartAsync("--allowed-origins", BrowserRequests.Origin,
            "--allowed-methods", "GET,POST", "--allowed-headers", "Authorization,Content-Type");

        using HttpResponseMessage listed = await BrowserRequests.PreflightAsync(server.Http, BrowserRequests.Origin, headers: "authorization, content-type");
        Assert.Equal(BrowserRequests.Origin, BrowserRequests.Header(listed, "Access-Control-Allow-Origin"));
        Assert.Equal(["authorization", "content-type"], BrowserRequests.Entries(listed, "Access-Control-Allow-Headers").Order());

        // The answer names the listed ones only; the browser then refuses a request that needs
        // more: the OpenAI SDK's x-stainless-* headers, or a DELETE.
        using HttpResponseMessage sdk = await BrowserRequests.PreflightAsync(server.Http, BrowserRequests.Origin);
        Assert.DoesNotContain("x-stainless-os", BrowserRequests.Entries(sdk, "Access-Control-Allow-Headers"));
        using HttpResponseMessage delete = await BrowserRequests.PreflightAsync(server.Http, BrowserRequests.Origin, method: "DELETE", headers: "authorization");
        Assert.Equal(["get", "post"], BrowserRequests.Entries(delete, "Access-Control-Allow-Methods").Order());
    }
}
