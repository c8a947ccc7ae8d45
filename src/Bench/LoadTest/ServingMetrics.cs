namespace LlmServer.Bench.LoadTest;

/// <summary>
/// Turns the outcomes of a run into vLLM's serving metrics. As in vLLM, only successful requests count
/// towards tokens and latencies; failed ones are counted and their messages kept.
/// </summary>
internal static class ServingMetrics
{
    /// <summary>Enough distinct messages to tell what went wrong without a flood of near-duplicates.</summary>
    internal const int MaxDistinctErrors = 10;

    public static ServingBenchmarkResult Compute(
        ServingBenchmarkOptions options,
        string model,
        DateTimeOffset startedAt,
        double durationSeconds,
        int peakConcurrentRequests,
        IReadOnlyList<RequestOutcome> outcomes)
    {
        RequestOutcome[] succeeded = outcomes.Where(o => o.Succeeded).ToArray();
        long inputTokens = succeeded.Sum(o => (long)o.PromptTokens);
        long outputTokens = succeeded.Sum(o => (long)o.CompletionTokens);
        return new ServingBenchmarkResult
        {
            StartedAt = startedAt,
            BaseUrl = options.BaseUrl.ToString(),
            Model = model,
            Endpoint = options.Endpoint,
            NumPrompts = options.NumPrompts,
            InputLength = options.InputLength,
            OutputLength = options.OutputLength,
            RequestRate = options.SendsAllAtOnce ? null : options.RequestRate,
            MaxConcurrency = options.MaxConcurrency,
            Seed = options.Seed,
            SharedPrefix = options.SharedPrefix is not null,
            DurationSeconds = durationSeconds,
            Completed = succeeded.Length,
            Failed = outcomes.Count - succeeded.Length,
            RateLimited = outcomes.Count(o => o.RateLimited),
            Errors = outcomes
                .Where(o => o.Error is not null)
                .GroupBy(o => o.Error!)
                .Take(MaxDistinctErrors)
                .Select(g => new ErrorCount(g.Key, g.Count()))
                .ToArray(),
            PeakConcurrentRequests = peakConcurrentRequests,
            TotalInputTokens = inputTokens,
            TotalOutputTokens = outputTokens,
            RequestThroughput = PerSecond(succeeded.Length, durationSeconds),
            OutputThroughput = PerSecond(outputTokens, durationSeconds),
            TotalTokenThroughput = PerSecond(inputTokens + outputTokens, durationSeconds),
            TtftMs = LatencyStatistics.Summarize(succeeded.Where(o => o.TimeToFirstTokenMs is not null).Select(o => o.TimeToFirstTokenMs!.Value)),
            TpotMs = LatencyStatistics.Summarize(succeeded
                .Where(o => o.TimeToFirstTokenMs is not null)
                .Select(o => LatencyStatistics.TimePerOutputToken(o.LatencyMs, o.TimeToFirstTokenMs!.Value, o.CompletionTokens))
                .OfType<double>()),
            ItlMs = LatencyStatistics.Summarize(succeeded.SelectMany(o => o.InterTokenLatenciesMs)),
            E2elMs = LatencyStatistics.Summarize(succeeded.Select(o => o.LatencyMs)),
        };
    }

    private static double PerSecond(double count, double seconds) => seconds > 0 ? count / seconds : 0;
}
