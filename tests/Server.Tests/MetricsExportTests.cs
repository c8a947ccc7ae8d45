using System.Net;
using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>
/// The engine's meters are found by name process-wide, so a /metrics page shows the series of
/// every engine alive in the process. In production that is one; in this test run, servers of
/// other test classes would be too, so these tests run alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideMetricsCollection
{
    public const string Name = "process-wide metrics";
}

/// <summary>The Prometheus metrics the engine and host export.</summary>
[Collection(ProcessWideMetricsCollection.Name)]
public sealed class MetricsExportTests : IAsyncLifetime
{
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d")]);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private Task<HttpResponseMessage> PostAsync(string path, object body) =>
        _server.Http.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json"));

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
