namespace LlmServer.Bench.LoadTest;

/// <summary>
/// The statistics vLLM's serving benchmark reports, computed the way numpy computes them, so that
/// numbers from this tool and from <c>vllm bench serve</c> can be compared directly.
/// </summary>
public static class LatencyStatistics
{
    /// <summary>Mean, median, population standard deviation and 99th percentile of <paramref name="samples"/>.</summary>
    public static LatencySummary Summarize(IEnumerable<double> samples)
    {
        double[] sorted = samples.ToArray();
        if (sorted.Length == 0)
        {
            return LatencySummary.Empty;
        }
        Array.Sort(sorted);
        return new LatencySummary(
            sorted.Length,
            Mean(sorted),
            PercentileOfSorted(sorted, 50),
            StandardDeviation(sorted),
            PercentileOfSorted(sorted, 99));
    }

    /// <summary>
    /// numpy's default <c>np.percentile</c> ("linear"): the value at rank <c>p/100 * (n-1)</c>,
    /// interpolated between the two neighbouring samples. 0 for no samples.
    /// </summary>
    public static double Percentile(IEnumerable<double> samples, double percent)
    {
        double[] sorted = samples.ToArray();
        Array.Sort(sorted);
        return PercentileOfSorted(sorted, percent);
    }

    public static double Mean(IReadOnlyCollection<double> samples) =>
        samples.Count == 0 ? 0 : samples.Sum() / samples.Count;

    /// <summary>Population standard deviation (numpy's default <c>ddof=0</c>), not the sample one.</summary>
    public static double StandardDeviation(IReadOnlyCollection<double> samples)
    {
        if (samples.Count == 0)
        {
            return 0;
        }
        double mean = Mean(samples);
        double squares = samples.Sum(x => (x - mean) * (x - mean));
        return Math.Sqrt(squares / samples.Count);
    }

    /// <summary>
    /// Time per output token after the first: <c>(latency - ttft) / (output_tokens - 1)</c>. Undefined
    /// (null) for a single-token output, which vLLM leaves out of the TPOT statistics rather than count as 0.
    /// </summary>
    public static double? TimePerOutputToken(double latencyMs, double timeToFirstTokenMs, int outputTokens) =>
        outputTokens > 1 ? (latencyMs - timeToFirstTokenMs) / (outputTokens - 1) : null;

    private static double PercentileOfSorted(double[] sorted, double percent)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(percent, 0);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(percent, 100);
        if (sorted.Length == 0)
        {
            return 0;
        }
        double rank = percent / 100 * (sorted.Length - 1);
        int below = (int)Math.Floor(rank);
        int above = Math.Min(below + 1, sorted.Length - 1);
        return sorted[below] + (sorted[above] - sorted[below]) * (rank - below);
    }
}
