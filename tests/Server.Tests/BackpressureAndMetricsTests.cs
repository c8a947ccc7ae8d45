using System.Net;
using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>A bounded queue answered with 429 + Retry-After, and the Prometheus metrics.</summary>
public sealed class BackpressureAndMetricsTests : IAsyncLifetime
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

    [Fact]
    public async Task Metrics_report_requests_tokens_prefix_cache_and_latency_in_prometheus_text()
    {
        string prompt = string.Join(' ', Enumerable.Repeat("the same long system prompt", 12));
        for (int i = 0; i < 2; i++)
        {
            using HttpResponseMessage response = await PostAsync("/v1/completions", new { prompt, max_tokens = 4 });
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }

        string metrics = await _server.Http.GetStringAsync("/metrics");

        foreach (string name in new[]
        {
            "llmserver_num_requests_running", "llmserver_num_requests_waiting", "llmserver_kv_cache_usage_perc",
            "llmserver_prefix_cache_queries_total", "llmserver_prefix_cache_hits_total", "llmserver_prompt_tokens_total",
            "llmserver_generation_tokens_total", "llmserver_time_to_first_token_seconds_bucket",
            "llmserver_inter_token_latency_seconds_bucket", "llmserver_request_queue_time_seconds_bucket",
            "llmserver_process_resident_memory_bytes", "llmserver_torch_live_tensors",
        })
        {
            Assert.Contains(name, metrics);
        }
        Assert.True(Value(metrics, "llmserver_prefix_cache_hits_total") > 0, "the second identical prompt should hit the prefix cache");
        Assert.True(Value(metrics, "llmserver_generation_tokens_total") >= 8);
        Assert.True(Value(metrics, "llmserver_time_to_first_token_seconds_count") >= 2);
    }

    private static double Value(string metrics, string name)
    {
        string line = metrics.Split('\n').First(l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }
}
