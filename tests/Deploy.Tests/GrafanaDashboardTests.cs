using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using LlmServer.Bench.Prometheus;
using LlmServer.Inference.Tests;
using LlmServer.Tests;

namespace LlmServer.Deploy.Tests;

/// <summary>The Grafana dashboard asks only for series the real server exports on /metrics.</summary>
public sealed partial class GrafanaDashboardTests
{
    private static IReadOnlyList<string> Expressions()
    {
        using JsonDocument dashboard = JsonDocument.Parse(RepositoryFiles.Read("deploy/grafana/dashboards/llmserver.json"));
        return
        [
            .. dashboard.RootElement.GetProperty("panels").EnumerateArray()
                .SelectMany(panel => panel.GetProperty("targets").EnumerateArray())
                .Select(target => target.GetProperty("expr").GetString()!),
        ];
    }

    [Fact]
    public void The_dashboard_has_latency_throughput_queue_cache_and_fine_tuning_panels()
    {
        string all = string.Join('\n', Expressions());
        foreach (string needed in new[]
        {
            "histogram_quantile(0.99, sum by (le) (rate(llmserver_time_to_first_token_seconds_bucket",
            "histogram_quantile(0.99, sum by (le) (rate(llmserver_inter_token_latency_seconds_bucket",
            "rate(llmserver_generation_tokens_total", "rate(llmserver_prompt_tokens_total",
            "llmserver_num_requests_waiting", "llmserver_num_requests_running", "llmserver_kv_cache_usage_perc",
            "llmserver_fine_tuning_jobs",
        })
        {
            Assert.Contains(needed, all);
        }
    }

    [Fact]
    public async Task Every_metric_the_dashboard_queries_is_on_the_servers_metrics_page()
    {
        using var data = new TemporaryDataDirectory("deploy-metrics");
        await using RunningServer server = await RunningServer.StartAsync(
            ["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--data-dir", data.Path]);
        // Histograms and the finished-request counter have series once a request has finished.
        using HttpResponseMessage completion = await server.Http.PostAsync("/v1/completions",
            new StringContent("""{"prompt": "Hello, my name is", "max_tokens": 4}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);

        PrometheusScrape scrape = await PrometheusScrape.ReadAsync(server.Http, CancellationToken.None);
        var exported = scrape.Samples.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);

        var queried = Expressions().SelectMany(e => MetricName().Matches(e).Select(m => m.Value)).Distinct().Order().ToList();
        Assert.NotEmpty(queried);
        var missing = queried.Where(name => !exported.Contains(name)).ToList();
        Assert.True(missing.Count == 0, $"the dashboard queries metrics the server does not export: {string.Join(", ", missing)}");
        Assert.Equal(0, scrape.Value("llmserver_fine_tuning_jobs",
            new Dictionary<string, string> { ["otel_scope_name"] = "LlmServer.FineTuning", ["status"] = "running" }));
    }

    [GeneratedRegex(@"\bllmserver_[a-z0-9_]+")]
    private static partial Regex MetricName();
}
