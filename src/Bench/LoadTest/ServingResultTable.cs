using System.Globalization;
using System.Text;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// Renders a result in the layout of vLLM's benchmark printout (labels left-aligned to 40 columns,
/// sections centred in a 50-column rule), so that the two tools' outputs can be read side by side.
/// </summary>
internal static class ServingResultTable
{
    private const int Width = 50;
    private const int LabelWidth = 40;

    public static string Render(ServingBenchmarkResult result)
    {
        var table = new StringBuilder();
        Rule(table, " Serving Benchmark Result ", '=');
        Row(table, "Successful requests:", result.Completed);
        Row(table, "Failed requests:", result.Failed);
        if (result.RateLimited > 0)
        {
            Row(table, "Rate-limited requests (HTTP 429):", result.RateLimited);
        }
        if (result.MaxConcurrency is { } concurrency)
        {
            Row(table, "Maximum request concurrency:", concurrency);
        }
        Row(table, "Request rate configured (RPS):", result.RequestRate is { } rate ? Number(rate) : "inf");
        Row(table, "Benchmark duration (s):", Number(result.DurationSeconds));
        Row(table, "Total input tokens:", result.TotalInputTokens);
        Row(table, "Total generated tokens:", result.TotalOutputTokens);
        Row(table, "Request throughput (req/s):", Number(result.RequestThroughput));
        Row(table, "Output token throughput (tok/s):", Number(result.OutputThroughput));
        Row(table, "Peak concurrent requests:", result.PeakConcurrentRequests);
        Row(table, "Total Token throughput (tok/s):", Number(result.TotalTokenThroughput));
        Latency(table, "Time to First Token", "TTFT", result.TtftMs);
        Latency(table, "Time per Output Token (excl. 1st token)", "TPOT", result.TpotMs);
        Latency(table, "Inter-token Latency", "ITL", result.ItlMs);
        Latency(table, "End-to-end Latency", "E2EL", result.E2elMs);
        table.Append('=', Width).AppendLine();
        return table.ToString();
    }

    private static void Latency(StringBuilder table, string section, string metric, LatencySummary summary)
    {
        Rule(table, section, '-');
        Row(table, $"Mean {metric} (ms):", Number(summary.Mean));
        Row(table, $"Median {metric} (ms):", Number(summary.Median));
        Row(table, $"P99 {metric} (ms):", Number(summary.P99));
    }

    private static void Rule(StringBuilder table, string title, char fill)
    {
        int left = Math.Max(0, (Width - title.Length) / 2);
        int right = Math.Max(0, Width - title.Length - left);
        table.Append(fill, left).Append(title).Append(fill, right).AppendLine();
    }

    private static void Row(StringBuilder table, string label, object value) =>
        table.Append(label.PadRight(LabelWidth)).Append(' ').Append(Convert.ToString(value, CultureInfo.InvariantCulture)).AppendLine();

    private static string Number(double value) => value.ToString("F2", CultureInfo.InvariantCulture);
}
