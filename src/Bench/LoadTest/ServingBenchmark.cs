using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Bench.Progress;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// A load test against a running OpenAI-compatible server, after vLLM's <c>benchmarks/serve</c>:
/// random prompts of a fixed length, streamed completions of a fixed length, sent all at once or as
/// Poisson arrivals, optionally capped in concurrency, and summarised as throughput and TTFT/TPOT/ITL/E2EL.
/// </summary>
public static class ServingBenchmark
{
    public static async Task<ServingBenchmarkResult> RunAsync(
        ServingBenchmarkOptions options, IProgress<BenchmarkProgress>? progress, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        HttpClient client = BenchmarkHttpClient.Shared;
        string model = options.Model ?? await FirstServedModelAsync(client, options, ct);

        // Everything a request needs is prepared up front, so that the clock only runs while requests do.
        byte[][] bodies = RandomPromptGenerator.Generate(options)
            .Select(prompt => StreamingRequestBody.Serialize(options, model, prompt))
            .ToArray();
        TimeSpan[] sendAt = ArrivalSchedule.Offsets(options.NumPrompts, options.RequestRate, options.Seed);
        Uri url = options.Resolve(options.Endpoint);
        // Not disposed: a request cancelled with the run may still release it after RunAsync has thrown.
        SemaphoreSlim? concurrencyLimit = options.MaxConcurrency is { } limit ? new SemaphoreSlim(limit) : null;

        if (options.NumWarmups > 0)
        {
            await WarmUpAsync(client, url, options, model, concurrencyLimit, ct);
        }

        DateTimeOffset startedAt = DateTimeOffset.UtcNow;
        long start = Stopwatch.GetTimestamp();
        var counters = new LoadTestCounters(options.NumPrompts, start, progress);
        var requests = new Task<RequestOutcome>[options.NumPrompts];
        for (int i = 0; i < requests.Length; i++)
        {
            TimeSpan wait = sendAt[i] - Stopwatch.GetElapsedTime(start);
            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait, ct);
            }
            // As in vLLM, arrivals follow the schedule and then queue for the concurrency limit, so a
            // limit below what the rate needs shows up as queueing in the client rather than a slower schedule.
            requests[i] = SendWhenAllowedAsync(client, url, bodies[i], options, concurrencyLimit, counters, ct);
        }
        RequestOutcome[] outcomes = await Task.WhenAll(requests);
        double durationSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        return ServingMetrics.Compute(options, model, startedAt, durationSeconds, counters.PeakInFlight, outcomes);
    }

    /// <summary>
    /// The warm-up requests, all at once under the concurrency limit. Their prompts come from another seed,
    /// so none of the measured prompts is in the server's prefix cache because of them; their outcomes are
    /// dropped, and their counters never reach the progress display.
    /// </summary>
    private static async Task WarmUpAsync(HttpClient client, Uri url, ServingBenchmarkOptions options, string model,
        SemaphoreSlim? concurrencyLimit, CancellationToken ct)
    {
        ServingBenchmarkOptions warmUp = options with { NumPrompts = options.NumWarmups, Seed = unchecked(options.Seed + WarmUpSeedOffset) };
        var counters = new LoadTestCounters(warmUp.NumPrompts, Stopwatch.GetTimestamp(), progress: null);
        await Task.WhenAll(RandomPromptGenerator.Generate(warmUp)
            .Select(prompt => StreamingRequestBody.Serialize(warmUp, model, prompt))
            .Select(body => SendWhenAllowedAsync(client, url, body, warmUp, concurrencyLimit, counters, ct)));
    }

    private const int WarmUpSeedOffset = 1_000_003;

    private static async Task<RequestOutcome> SendWhenAllowedAsync(
        HttpClient client, Uri url, byte[] body, ServingBenchmarkOptions options,
        SemaphoreSlim? concurrencyLimit, LoadTestCounters counters, CancellationToken ct)
    {
        if (concurrencyLimit is not null)
        {
            await concurrencyLimit.WaitAsync(ct);
        }
        try
        {
            counters.RequestSent();
            RequestOutcome outcome = await StreamingRequest.SendAsync(client, url, body, options.InputLength, options.RequestTimeout, ct);
            counters.RequestFinished(outcome);
            return outcome;
        }
        finally
        {
            concurrencyLimit?.Release();
        }
    }

    /// <summary>The first model <c>GET /v1/models</c> lists, which for a single-model server is the one it serves.</summary>
    private static async Task<string> FirstServedModelAsync(HttpClient client, ServingBenchmarkOptions options, CancellationToken ct)
    {
        Uri url = options.Resolve("/v1/models");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
        deadline.CancelAfter(options.RequestTimeout);
        using HttpResponseMessage response = await client.GetAsync(url, deadline.Token);
        if (!response.IsSuccessStatusCode)
        {
            throw new HttpRequestException(
                $"GET {url} answered HTTP {(int)response.StatusCode}; pass the model name explicitly", null, response.StatusCode);
        }
        JsonElement models = await response.Content.ReadFromJsonAsync<JsonElement>(deadline.Token);
        if (models.ValueKind == JsonValueKind.Object
            && models.TryGetProperty("data", out JsonElement data) && data.ValueKind == JsonValueKind.Array
            && data.GetArrayLength() > 0
            && data[0].TryGetProperty("id", out JsonElement id) && id.ValueKind == JsonValueKind.String)
        {
            return id.GetString()!;
        }
        throw new InvalidOperationException($"GET {url} listed no models; pass the model name explicitly");
    }
}
