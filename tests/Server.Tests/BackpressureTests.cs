using System.Net;
using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>A bounded queue answered with 429 + Retry-After.</summary>
public sealed class BackpressureTests : IAsyncLifetime
{
    private RunningServer _server = null!;

    public async Task InitializeAsync()
    {
        // Room for 2 running + 1 waiting.
        _server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"),
            "--max-num-seqs", "2", "--max-queue", "1"]);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
    }

    private Task<HttpResponseMessage> PostAsync(string path, object body) =>
        _server.Http.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"));

    [Fact]
    public async Task A_flood_past_the_queue_gets_429_with_retry_after_and_the_rest_complete()
    {
        // Long generations hold their slots while the flood arrives.
        Task<HttpResponseMessage>[] flood = Enumerable.Range(0, 12)
            .Select(_ => PostAsync("/v1/completions", new { prompt = "Hello", max_tokens = 120, ignore_eos = true }))
            .ToArray();
        HttpResponseMessage[] responses = await Task.WhenAll(flood);

        HttpResponseMessage[] refused = responses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToArray();
        HttpResponseMessage[] served = responses.Where(r => r.StatusCode == HttpStatusCode.OK).ToArray();
        Assert.Equal(12, refused.Length + served.Length);
        Assert.InRange(served.Length, 3, 11);
        Assert.NotEmpty(refused);
        foreach (HttpResponseMessage response in refused)
        {
            Assert.True(response.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
            JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
            Assert.Equal("rate_limit_exceeded", error.GetProperty("code").GetString());
        }
        foreach (HttpResponseMessage response in served)
        {
            JsonElement body = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.Equal(120, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }
        // Once the flood has drained, the server takes requests again.
        using HttpResponseMessage after = await PostAsync("/v1/completions", new { prompt = "Hello", max_tokens = 2 });
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task A_request_bigger_than_the_whole_engine_is_a_400_not_an_endless_429()
    {
        using HttpResponseMessage response = await PostAsync("/v1/completions", new { prompt = "Hello", max_tokens = 2, n = 4 });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("n", error.GetProperty("param").GetString());
        Assert.Contains("at most 3", error.GetProperty("message").GetString());
    }
}
