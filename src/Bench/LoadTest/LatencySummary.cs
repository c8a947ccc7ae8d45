namespace LlmServer.Bench.LoadTest;

/// <summary>
/// One latency metric over a benchmark run, in milliseconds. Every field is 0 when there were no samples,
/// as vLLM reports it (<c>np.mean(x or 0)</c>), so that the JSON never carries NaN.
/// </summary>
public sealed record LatencySummary(int Count, double Mean, double Median, double Std, double P99)
{
    public static readonly LatencySummary Empty = new(0, 0, 0, 0, 0);
}
