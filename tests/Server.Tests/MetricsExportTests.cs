using System.Net;
using System.Text.Json;
using LlmServer.Bench.Prometheus;
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
        PrometheusScrape scrape = PrometheusScrape.Parse(metrics);

        foreach (string name in new[]
        {
            "llmserver_num_requests_running", "llmserver_num_requests_waiting", "llmserver_kv_cache_usage_perc",
            "llmserver_prefix_cache_queries_total", "llmserver_prefix_cache_hits_total", "llmserver_prompt_tokens_total",
            "llmserver_generation_tokens_total", "llmserver_time_to_first_token_seconds_bucket",
            "llmserver_inter_token_latency_seconds_bucket", "llmserver_request_queue_time_seconds_bucket",
            "llmserver_process_resident_memory_bytes", "llmserver_torch_live_tensors",
        })
        {
            Assert.Contains(scrape.Samples, s => s.Name == name);
        }
        Assert.True(scrape.Value("llmserver_prefix_cache_hits_total") > 0, "the second identical prompt should hit the prefix cache");
        Assert.True(scrape.Value("llmserver_generation_tokens_total") >= 8);
        Assert.True(scrape.Value("llmserver_time_to_first_token_seconds_count") >= 2);
    }

    [Fact]
    public async Task Samples_carry_no_timestamps_so_that_prometheus_stamps_them_with_the_scrape_time()
    {
        using HttpResponseMessage completion = await PostAsync("/v1/completions", new { prompt = "Hello", max_tokens = 2 });
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);

        // Both formats the exporter serves: the text format by default, OpenMetrics to a scraper that asks for it.
        foreach (string? accept in new[] { null, "application/openmetrics-text; version=1.0.0" })
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
            if (accept is not null)
            {
                request.Headers.TryAddWithoutValidation("Accept", accept);
            }
            using HttpResponseMessage response = await _server.Http.SendAsync(request);
            PrometheusScrape scrape = PrometheusScrape.Parse(await response.Content.ReadAsStringAsync());

            Assert.Contains(scrape.Samples, s => s.Name == "llmserver_torch_live_tensors");
            PrometheusSample[] stamped = [.. scrape.Samples.Where(s => s.TimestampMs is not null)];
            Assert.True(stamped.Length == 0, $"{stamped.Length} samples carry a timestamp ({accept ?? "text format"}), the first: {stamped.FirstOrDefault()?.Name}");
        }
    }
}
