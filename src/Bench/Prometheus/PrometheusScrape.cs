namespace LlmServer.Bench.Prometheus;

/// <summary>One read of the server's Prometheus text at /metrics: its samples, found by name and labels.</summary>
public sealed class PrometheusScrape(IReadOnlyList<PrometheusSample> samples)
{
    public IReadOnlyList<PrometheusSample> Samples { get; } = samples;

    /// <exception cref="FormatException">The text has a line that is not a sample.</exception>
    public static PrometheusScrape Parse(string text) => new(PrometheusText.Parse(text));

    public static async Task<PrometheusScrape> ReadAsync(HttpClient http, CancellationToken cancellationToken) =>
        Parse(await http.GetStringAsync("/metrics", cancellationToken));

    /// <summary>The value of the one series named <paramref name="name"/> on a fresh read of /metrics.</summary>
    public static async Task<double> ReadAsync(HttpClient http, string name, CancellationToken cancellationToken) =>
        (await ReadAsync(http, cancellationToken)).Value(name);

    /// <summary>The samples named <paramref name="name"/> that carry every one of <paramref name="labels"/> (and maybe others).</summary>
    public IEnumerable<PrometheusSample> Series(string name, IReadOnlyDictionary<string, string>? labels = null) =>
        Samples.Where(s => s.Name == name && (labels is null || s.HasLabels(labels)));

    /// <summary>The value of the one series that matches.</summary>
    /// <exception cref="InvalidOperationException">None matches, or several do (then which one is meant is unclear).</exception>
    public double Value(string name, IReadOnlyDictionary<string, string>? labels = null)
    {
        List<PrometheusSample> matches = [.. Series(name, labels)];
        return matches.Count == 1
            ? matches[0].Value
            : throw new InvalidOperationException(matches.Count == 0
                ? $"/metrics has no series {Describe(name, labels)}"
                : $"/metrics has {matches.Count} series {Describe(name, labels)}: {string.Join("; ", matches.Select(m => Describe(m.Name, m.Labels)))}");
    }

    /// <summary>The values of every matching series added up; 0 when none matches (a counter nothing has counted yet).</summary>
    public double Sum(string name, IReadOnlyDictionary<string, string>? labels = null) => Series(name, labels).Sum(s => s.Value);

    private static string Describe(string name, IReadOnlyDictionary<string, string>? labels) =>
        labels is null || labels.Count == 0 ? name : $"{name}{{{string.Join(",", labels.Select(l => $"{l.Key}=\"{l.Value}\""))}}}";
}
