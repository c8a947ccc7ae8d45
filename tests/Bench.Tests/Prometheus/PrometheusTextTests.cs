using System.Net;
using System.Text;
using LlmServer.Bench.Prometheus;

namespace LlmServer.Bench.Tests.Prometheus;

public sealed class PrometheusTextTests
{
    [Fact]
    public void A_timestamp_after_the_value_is_read_as_the_timestamp_not_as_the_value()
    {
        // The line OpenTelemetry's exporter 1.15.3-beta.1 wrote, whose timestamp the soak test took for the tensor count.
        PrometheusSample sample = Assert.Single(PrometheusText.Parse(
            "llmserver_torch_live_tensors{otel_scope_name=\"LlmServer.Engine\"} 65 1796511450764\n"));

        Assert.Equal("llmserver_torch_live_tensors", sample.Name);
        Assert.Equal("LlmServer.Engine", Assert.Single(sample.Labels, l => l.Key == "otel_scope_name").Value);
        Assert.Equal(65, sample.Value);
        Assert.Equal(1796511450764, sample.TimestampMs);
    }

    [Fact]
    public async Task Bench_reads_the_value_of_a_timestamped_sample()
    {
        // What bench soak and the memory benchmark call: the old reader took the last word of the line.
        using var http = new HttpClient(new FixedResponse("""
            # TYPE llmserver_torch_live_tensors gauge
            llmserver_torch_live_tensors{otel_scope_name="LlmServer.Engine"} 65 1796511403056
            # TYPE llmserver_num_requests_running gauge
            llmserver_num_requests_running{otel_scope_name="LlmServer.Engine"} 0 1796511403056
            """)) { BaseAddress = new Uri("http://metrics.test") };

        Assert.Equal(65, await PrometheusScrape.ReadAsync(http, "llmserver_torch_live_tensors", CancellationToken.None));
        Assert.Equal(0, await PrometheusScrape.ReadAsync(http, "llmserver_num_requests_running", CancellationToken.None));
    }

    [Fact]
    public void Quoted_label_values_keep_spaces_commas_braces_and_unescape_quotes_backslashes_and_newlines()
    {
        const string line = """http_requests_total{path="/v1/chat completions, all",query="say \"hi\" } 5",dir="C:\\models\\gpt2",text="two\nlines",empty=""} 3.5""";

        PrometheusSample sample = Assert.Single(PrometheusText.Parse(line));

        Assert.Equal("http_requests_total", sample.Name);
        Assert.Equal("/v1/chat completions, all", sample.Labels["path"]);
        Assert.Equal("say \"hi\" } 5", sample.Labels["query"]);
        Assert.Equal(@"C:\models\gpt2", sample.Labels["dir"]);
        Assert.Equal("two\nlines", sample.Labels["text"]);
        Assert.Equal("", sample.Labels["empty"]);
        Assert.Equal(5, sample.Labels.Count);
        Assert.Equal(3.5, sample.Value);
        Assert.Null(sample.TimestampMs);
    }

    [Fact]
    public void Values_may_be_NaN_infinities_signed_or_in_exponent_notation()
    {
        IReadOnlyList<PrometheusSample> samples = PrometheusText.Parse("""
            a NaN
            b +Inf
            c -Inf
            d -1.5e-3
            e 1E+6 -42
            ttft_bucket{le="+Inf"} 7
            """);

        Assert.True(double.IsNaN(samples[0].Value));
        Assert.Equal(double.PositiveInfinity, samples[1].Value);
        Assert.Equal(double.NegativeInfinity, samples[2].Value);
        Assert.Equal(-0.0015, samples[3].Value);
        Assert.Equal(1e6, samples[4].Value);
        Assert.Equal(-42, samples[4].TimestampMs);
        Assert.Equal("+Inf", samples[5].Labels["le"]);
        Assert.Equal(7, samples[5].Value);
    }

    [Fact]
    public void Comments_blank_lines_and_carriage_returns_are_skipped_and_blanks_may_be_tabs()
    {
        IReadOnlyList<PrometheusSample> samples = PrometheusText.Parse(
            "# HELP up Whether the target is up.\r\n# TYPE up gauge\r\nup 1\r\n\r\n  # indented comment\n" +
            "no_labels\t2\t1700000000000\nempty_braces{} 3\ntrailing_comma{a=\"1\",} 4\nspaced { a = \"1\" , b=\"2\" } 5\n# EOF\n");

        Assert.Equal(["up", "no_labels", "empty_braces", "trailing_comma", "spaced"], samples.Select(s => s.Name));
        Assert.Equal([1.0, 2, 3, 4, 5], samples.Select(s => s.Value));
        Assert.Equal(1700000000000, samples[1].TimestampMs);
        Assert.Empty(samples[2].Labels);
        Assert.Equal("1", Assert.Single(samples[3].Labels).Value);
        Assert.Equal(2, samples[4].Labels.Count);
    }

    [Theory]
    [InlineData("lonely_name", "no value")]
    [InlineData("m{a=\"1\"}", "no value")]
    [InlineData("m{a=\"1\"}5", "unexpected '5' after the labels")]
    [InlineData("m{a=\"open} 1", "not closed with '\"'")]
    [InlineData("m{a=\"x\\t\"} 1", "unknown escape '\\t'")]
    [InlineData("m{a=1} 1", "a quoted value for the label a")]
    [InlineData("m{a=\"1\" b=\"2\"} 1", "expected ',' or '}' after the label a")]
    [InlineData("m{a=\"1\",a=\"2\"} 1", "the label a appears twice")]
    [InlineData("m{a=\"1\"", "not closed with '}'")]
    [InlineData("m one", "the value 'one' is not a number")]
    [InlineData("m 1 1700000000.5", "the timestamp '1700000000.5' is not a whole number")]
    [InlineData("m 1 2 3", "unexpected '3' after the timestamp")]
    [InlineData("9lives 1", "a metric name cannot start with '9'")]
    public void A_line_that_is_not_a_sample_is_refused_naming_its_line_and_the_problem(string line, string problem)
    {
        var refused = Assert.Throws<FormatException>(() => PrometheusText.Parse("# TYPE m gauge\n" + line + "\n"));

        Assert.Contains("line 2: ", refused.Message);
        Assert.Contains(problem, refused.Message);
        Assert.EndsWith(line, refused.Message);
    }

    [Fact]
    public void A_scrape_finds_series_by_name_and_labels()
    {
        PrometheusScrape scrape = PrometheusScrape.Parse("""
            llmserver_request_success_total{otel_scope_name="LlmServer.Engine",finished_reason="stop"} 2
            llmserver_request_success_total{otel_scope_name="LlmServer.Engine",finished_reason="length"} 5 1700000000000
            llmserver_request_success_total_extra 100
            llmserver_torch_live_tensors{otel_scope_name="LlmServer.Engine"} 65
            """);

        Assert.Equal(65, scrape.Value("llmserver_torch_live_tensors"));
        Assert.Equal(5, scrape.Value("llmserver_request_success_total", new Dictionary<string, string> { ["finished_reason"] = "length" }));
        Assert.Equal(7, scrape.Sum("llmserver_request_success_total"));
        Assert.Equal(0, scrape.Sum("llmserver_request_success_total", new Dictionary<string, string> { ["finished_reason"] = "abort" }));
        Assert.Contains("has no series llmserver_num_preemptions_total",
            Assert.Throws<InvalidOperationException>(() => scrape.Value("llmserver_num_preemptions_total")).Message);
        Assert.Contains("has 2 series llmserver_request_success_total",
            Assert.Throws<InvalidOperationException>(() => scrape.Value("llmserver_request_success_total")).Message);
    }

    private sealed class FixedResponse(string body) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
            Task.FromResult(new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(body, Encoding.UTF8, "text/plain") });
    }
}
