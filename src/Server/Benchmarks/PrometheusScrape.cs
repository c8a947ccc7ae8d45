using System.Globalization;

namespace LlmServer.Benchmarks;

/// <summary>Reads one value from the server's Prometheus text at /metrics.</summary>
public static class PrometheusScrape
{
    public static async Task<double> ReadAsync(HttpClient http, string name, CancellationToken cancellationToken)
    {
        string metrics = await http.GetStringAsync("/metrics", cancellationToken);
        string line = metrics.Split('\n').First(l => l.StartsWith(name + "{", StringComparison.Ordinal) || l.StartsWith(name + " ", StringComparison.Ordinal));
        return double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
}
