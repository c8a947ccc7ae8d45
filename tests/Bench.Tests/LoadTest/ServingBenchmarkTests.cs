using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using LlmServer.Bench.LoadTest;
using LlmServer.Bench.Progress;

namespace LlmServer.Bench.Tests.LoadTest;

/// <summary>The real load generator against <see cref="FakeStreamingServer"/>, whose delays bound the timings from below.</summary>
public sealed class ServingBenchmarkTests
{
    private static readonly TimeSpan TokenDelay = TimeSpan.FromMilliseconds(15);
    // Timers may fire up to a clock tick early; the bounds below allow for that much.
    private const double TimerSlackMs = 2;
    private const double ScheduleSlackMs = 10;

    [Fact]
    public async Task Completions_AllSucceed_WithUsageTotalsAndTimingsAboveTheServersDelays()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TokenDelay);
        var progress = new RecordingProgress();

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(
            Options(server) with { NumPrompts = 8, InputLength = 16, OutputLength = 5 }, progress, CancellationToken.None);

        Assert.Equal(8, result.Completed);
        Assert.Equal(0, result.Failed);
        Assert.Empty(result.Errors);
        Assert.Equal(8 * 16, result.TotalInputTokens);
        Assert.Equal(8 * 5, result.TotalOutputTokens);
        Assert.Equal(FakeStreamingServer.ModelId, result.Model);
        Assert.Equal(8, result.PeakConcurrentRequests);

        Assert.Equal(8, result.TtftMs.Count);
        Assert.True(result.TtftMs.Median >= TokenDelay.TotalMilliseconds - TimerSlackMs, $"TTFT {result.TtftMs.Median} ms");
        // Five chunks give four gaps per request, pooled over all requests.
        Assert.Equal(8 * 4, result.ItlMs.Count);
        Assert.True(result.ItlMs.Mean >= 0.8 * TokenDelay.TotalMilliseconds, $"ITL {result.ItlMs.Mean} ms");
        Assert.Equal(8, result.TpotMs.Count);
        Assert.True(result.TpotMs.Mean >= 0.8 * TokenDelay.TotalMilliseconds, $"TPOT {result.TpotMs.Mean} ms");
        Assert.True(result.E2elMs.Median >= 5 * TokenDelay.TotalMilliseconds - TimerSlackMs, $"E2EL {result.E2elMs.Median} ms");
        Assert.True(result.E2elMs.Median >= result.TtftMs.Median);
        Assert.True(result.DurationSeconds * 1000 >= result.E2elMs.P99 - TimerSlackMs);
        Assert.Equal(result.Completed / result.DurationSeconds, result.RequestThroughput, 6);
        Assert.Equal(result.TotalOutputTokens / result.DurationSeconds, result.OutputThroughput, 6);
        Assert.Equal((result.TotalInputTokens + result.TotalOutputTokens) / result.DurationSeconds, result.TotalTokenThroughput, 6);

        Assert.Equal(8, progress.Reports.Count);
        Assert.Equal(new[] { 1, 2, 3, 4, 5, 6, 7, 8 }, progress.Reports.Select(r => r.Completed));
        Assert.All(progress.Reports, r => Assert.Equal(8, r.Total));
    }

    [Fact]
    public async Task Completions_SendTokenIdPromptsWithTheStreamingAndLengthSettings()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TimeSpan.Zero);

        await ServingBenchmark.RunAsync(
            Options(server) with { NumPrompts = 3, InputLength = 12, OutputLength = 2, Temperature = 0.5 }, null, CancellationToken.None);

        Assert.Equal(3, server.RequestBodies.Count);
        foreach (JsonElement body in server.RequestBodies)
        {
            Assert.Equal(FakeStreamingServer.ModelId, body.GetProperty("model").GetString());
            JsonElement[] prompt = body.GetProperty("prompt").EnumerateArray().ToArray();
            Assert.Equal(12, prompt.Length);
            Assert.All(prompt, id => Assert.InRange(id.GetInt32(), 1000, 48999));
            Assert.Equal(2, body.GetProperty("max_tokens").GetInt32());
            Assert.True(body.GetProperty("ignore_eos").GetBoolean());
            Assert.True(body.GetProperty("stream").GetBoolean());
            Assert.True(body.GetProperty("stream_options").GetProperty("include_usage").GetBoolean());
            Assert.Equal(0.5, body.GetProperty("temperature").GetDouble());
        }
        Assert.Equal(3, server.RequestBodies.Select(b => b.GetProperty("prompt").GetRawText()).Distinct().Count());
    }

    [Fact]
    public async Task Warmups_AreSentFirst_WithOtherPrompts_AndLeftOutOfTheResult()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TimeSpan.Zero);
        var progress = new RecordingProgress();
        ServingBenchmarkOptions options = Options(server) with { NumPrompts = 4, NumWarmups = 3, InputLength = 8, OutputLength = 2, MaxConcurrency = 2 };

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(options, progress, CancellationToken.None);

        Assert.Equal(7, server.RequestBodies.Count);
        Assert.Equal(4, result.Completed);
        Assert.Equal(4 * 2, result.TotalOutputTokens);
        Assert.Equal([1, 2, 3, 4], progress.Reports.Select(r => r.Completed));
        // The measured prompts are the ones a run without warm-ups sends, and no warm-up prompt is among them.
        await using FakeStreamingServer unwarmed = await FakeStreamingServer.StartAsync(TimeSpan.Zero);
        await ServingBenchmark.RunAsync(Options(unwarmed) with { NumPrompts = 4, InputLength = 8, OutputLength = 2 }, null, CancellationToken.None);
        string[] measured = unwarmed.RequestBodies.Select(b => b.GetProperty("prompt").GetRawText()).ToArray();
        string[] sent = server.RequestBodies.Select(b => b.GetProperty("prompt").GetRawText()).ToArray();
        Assert.Equal(measured.Order(), sent[3..].Order());
        Assert.Empty(sent[..3].Intersect(measured));
    }

    [Fact]
    public void A_negative_warmup_count_is_refused()
    {
        var options = new ServingBenchmarkOptions { BaseUrl = new Uri("http://127.0.0.1:1"), NumWarmups = -1 };
        Assert.Contains("warm-up", Assert.Throws<ArgumentException>(options.Validate).Message);
    }

    [Fact]
    public async Task RateLimitedRequests_CountAsFailedAndSeparatelyAsRateLimited()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(
            TokenDelay, index => index % 3 == 2 ? FakeReply.RateLimited : FakeReply.Stream);

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(
            Options(server) with { NumPrompts = 9, InputLength = 4, OutputLength = 3 }, null, CancellationToken.None);

        Assert.Equal(6, result.Completed);
        Assert.Equal(3, result.Failed);
        Assert.Equal(3, result.RateLimited);
        ErrorCount error = Assert.Single(result.Errors);
        Assert.Equal("HTTP 429: too many requests", error.Message);
        Assert.Equal(3, error.Count);
        // Only the successful requests count towards tokens and latencies.
        Assert.Equal(6 * 4, result.TotalInputTokens);
        Assert.Equal(6 * 3, result.TotalOutputTokens);
        Assert.Equal(6, result.TtftMs.Count);
        Assert.Equal(6, result.E2elMs.Count);
        Assert.Contains("Rate-limited requests (HTTP 429):        3", result.ToTable());
    }

    [Fact]
    public async Task BrokenStreams_AreFailures_WithTheirMessages()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(
            TimeSpan.FromMilliseconds(2),
            index => index switch { 0 => FakeReply.ErrorEventAfterFirstToken, 1 => FakeReply.StreamCutBeforeDone, _ => FakeReply.Stream });

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(
            Options(server) with { NumPrompts = 4, OutputLength = 4, MaxConcurrency = 1 }, null, CancellationToken.None);

        Assert.Equal(2, result.Completed);
        Assert.Equal(2, result.Failed);
        Assert.Equal(0, result.RateLimited);
        Assert.Equal(
            ["error event in stream: engine failed", "stream ended without data: [DONE]"],
            result.Errors.Select(e => e.Message));
    }

    [Fact]
    public async Task MaxConcurrency_CapsRequestsInFlight()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TimeSpan.FromMilliseconds(5));

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(
            Options(server) with { NumPrompts = 6, OutputLength = 3, MaxConcurrency = 2 }, null, CancellationToken.None);

        Assert.Equal(6, result.Completed);
        Assert.Equal(2, server.PeakInFlight);
        Assert.Equal(2, result.PeakConcurrentRequests);
        Assert.Contains("Maximum request concurrency:             2", result.ToTable());
    }

    [Fact]
    public async Task RequestRate_SpreadsArrivalsOverTheirSchedule()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TimeSpan.Zero);
        var options = Options(server) with { NumPrompts = 5, OutputLength = 1, RequestRate = 50, Seed = 3 };
        TimeSpan lastArrival = ArrivalSchedule.Offsets(5, 50, 3)[^1];

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(options, null, CancellationToken.None);

        Assert.Equal(5, result.Completed);
        Assert.Equal(50, result.RequestRate);
        // A delay may end a few milliseconds early on a loaded machine; all five sent at once would take none of the schedule.
        Assert.True(result.DurationSeconds >= lastArrival.TotalSeconds - ScheduleSlackMs / 1000, $"{result.DurationSeconds} s < {lastArrival.TotalSeconds} s");
        // One output token: TPOT is undefined and left out, as in vLLM.
        Assert.Equal(0, result.TpotMs.Count);
        Assert.Equal(0, result.ItlMs.Count);
    }

    [Fact]
    public async Task Chat_SendsMessages_AndIgnoresTheRoleOnlyChunkForTtft()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TokenDelay);

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(
            Options(server) with { Endpoint = "/v1/chat/completions", NumPrompts = 3, InputLength = 10, OutputLength = 3, SharedPrefix = "You are a benchmark." },
            null, CancellationToken.None);

        Assert.Equal(3, result.Completed);
        Assert.Equal(3 * 3, result.TotalOutputTokens);
        // The fake counts words: the 4 of the prefix and the 10 random ones.
        Assert.Equal(3 * 14, result.TotalInputTokens);
        Assert.True(result.TtftMs.Median >= TokenDelay.TotalMilliseconds - TimerSlackMs, $"TTFT {result.TtftMs.Median} ms");
        Assert.All(server.RequestBodies, body =>
        {
            JsonElement message = Assert.Single(body.GetProperty("messages").EnumerateArray());
            Assert.Equal("user", message.GetProperty("role").GetString());
            Assert.StartsWith("You are a benchmark. ", message.GetProperty("content").GetString());
        });
    }

    [Fact]
    public async Task SlowRequests_FailAtTheRequestTimeout()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TimeSpan.FromSeconds(30));

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(
            // The model is named: looking it up shares the request timeout, and 100 ms is too little for that on a loaded machine.
            Options(server) with { NumPrompts = 2, RequestTimeout = TimeSpan.FromMilliseconds(100), Model = "fake" }, null, CancellationToken.None);

        Assert.Equal(0, result.Completed);
        Assert.Equal(2, result.Failed);
        Assert.Equal("no complete response within 0.1 s", Assert.Single(result.Errors).Message);
        Assert.True(result.DurationSeconds < 5);
    }

    [Fact]
    public async Task CancellingTheRun_Throws()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TimeSpan.FromSeconds(30));
        using var cancellation = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => ServingBenchmark.RunAsync(Options(server) with { NumPrompts = 2 }, null, cancellation.Token));
    }

    [Fact]
    public async Task UnreachableServer_FailsEveryRequest_WhenTheModelIsNamed()
    {
        var options = new ServingBenchmarkOptions { BaseUrl = new Uri($"http://127.0.0.1:{UnusedPort()}"), Model = "m", NumPrompts = 3 };

        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(options, null, CancellationToken.None);

        Assert.Equal(0, result.Completed);
        Assert.Equal(3, result.Failed);
        Assert.Equal(3, Assert.Single(result.Errors).Count);
        Assert.Equal(0, result.TtftMs.Mean);
    }

    [Fact]
    public async Task UnreachableServer_Throws_WhenTheModelMustBeLookedUp()
    {
        var options = new ServingBenchmarkOptions { BaseUrl = new Uri($"http://127.0.0.1:{UnusedPort()}") };

        await Assert.ThrowsAsync<HttpRequestException>(() => ServingBenchmark.RunAsync(options, null, CancellationToken.None));
    }

    [Fact]
    public async Task Result_SerializesAsSnakeCase_AndRendersVllmsTable()
    {
        await using FakeStreamingServer server = await FakeStreamingServer.StartAsync(TimeSpan.Zero);
        ServingBenchmarkResult result = await ServingBenchmark.RunAsync(Options(server) with { NumPrompts = 2, OutputLength = 2 }, null, CancellationToken.None);

        string json = result.ToJson();
        using JsonDocument document = JsonDocument.Parse(json);
        JsonElement root = document.RootElement;
        Assert.Equal(2, root.GetProperty("completed").GetInt32());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("request_rate").ValueKind);
        foreach (string name in new[] { "duration_seconds", "total_input_tokens", "total_output_tokens", "request_throughput", "output_throughput", "total_token_throughput", "rate_limited", "peak_concurrent_requests" })
        {
            Assert.True(root.TryGetProperty(name, out _), name);
        }
        foreach (string metric in new[] { "ttft_ms", "tpot_ms", "itl_ms", "e2el_ms" })
        {
            JsonElement summary = root.GetProperty(metric);
            Assert.Equal(["count", "mean", "median", "std", "p99"], summary.EnumerateObject().Select(p => p.Name));
        }
        ServingBenchmarkResult? readBack = JsonSerializer.Deserialize<ServingBenchmarkResult>(json, ServingBenchmarkResult.JsonOptions);
        Assert.NotNull(readBack);
        Assert.Equal(result.TtftMs, readBack.TtftMs);
        Assert.Equal(result.TotalOutputTokens, readBack.TotalOutputTokens);

        string[] lines = result.ToTable().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("============ Serving Benchmark Result ============", lines[0]);
        Assert.Equal("Successful requests:                     2", lines[1]);
        Assert.Contains("---------------Time to First Token----------------", lines);
        Assert.Contains("-----Time per Output Token (excl. 1st token)------", lines);
        Assert.Contains("---------------Inter-token Latency----------------", lines);
        Assert.Contains("----------------End-to-end Latency----------------", lines);
        Assert.Contains(lines, l => l.StartsWith("Benchmark duration (s):                  ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("Median TTFT (ms):                        ", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("P99 ITL (ms):                            ", StringComparison.Ordinal));
        Assert.Equal(new string('=', 50), lines[^1]);
    }

    private static ServingBenchmarkOptions Options(FakeStreamingServer server) => new() { BaseUrl = server.BaseUrl };

    private static int UnusedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Records reports synchronously, unlike <see cref="Progress{T}"/>, which posts them to the thread pool.</summary>
    private sealed class RecordingProgress : IProgress<BenchmarkProgress>
    {
        private readonly List<BenchmarkProgress> _reports = [];

        public IReadOnlyList<BenchmarkProgress> Reports
        {
            get
            {
                lock (_reports)
                {
                    return _reports.ToArray();
                }
            }
        }

        public void Report(BenchmarkProgress value)
        {
            lock (_reports)
            {
                _reports.Add(value);
            }
        }
    }
}
