namespace LlmServer.Bench.Prometheus;

/// <summary>
/// One sample line of Prometheus' text format: <c>name{label="value",...} value [timestamp]</c>.
/// </summary>
/// <param name="Labels">Label values unescaped (<c>\"</c>, <c>\\</c> and <c>\n</c> read as the characters they stand for).</param>
/// <param name="Value">NaN, +Inf and -Inf included.</param>
/// <param name="TimestampMs">Milliseconds since the Unix epoch when the line carries one; null when it does not.</param>
public sealed record PrometheusSample(string Name, IReadOnlyDictionary<string, string> Labels, double Value, long? TimestampMs)
{
    /// <summary>True when every one of <paramref name="labels"/> is on this sample with that value (other labels may be too).</summary>
    public bool HasLabels(IEnumerable<KeyValuePair<string, string>> labels) =>
        labels.All(label => Labels.TryGetValue(label.Key, out string? value) && value == label.Value);
}
