using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// The outcome of one load test. Metric names follow vLLM's <c>bench serve</c> result file once
/// serialized with <see cref="JsonOptions"/> (<c>request_throughput</c>, <c>output_throughput</c>, ...);
/// the four latency metrics are objects in milliseconds (<c>ttft_ms.median</c> for vLLM's <c>median_ttft_ms</c>).
/// </summary>
public sealed record ServingBenchmarkResult
{
    /// <summary>snake_case, indented, and able to read back what it wrote.</summary>
    public static JsonSerializerOptions JsonOptions { get; } = CreateJsonOptions();

    public required DateTimeOffset StartedAt { get; init; }
    public required string BaseUrl { get; init; }
    public required string Model { get; init; }
    public required string Endpoint { get; init; }
    public required int NumPrompts { get; init; }
    public required int InputLength { get; init; }
    public required int OutputLength { get; init; }

    /// <summary>Requests per second asked for; null when every request was sent at once.</summary>
    public double? RequestRate { get; init; }

    public int? MaxConcurrency { get; init; }
    public int Seed { get; init; }

    /// <summary>Whether prompts began with a shared prefix (and so input lengths are approximate).</summary>
    public bool SharedPrefix { get; init; }

    /// <summary>From the first request sent to the last one finished.</summary>
    public required double DurationSeconds { get; init; }

    /// <summary>Requests that succeeded.</summary>
    public required int Completed { get; init; }

    /// <summary>Requests that failed, the rate-limited ones included.</summary>
    public required int Failed { get; init; }

    /// <summary>Requests the server refused with HTTP 429.</summary>
    public required int RateLimited { get; init; }

    /// <summary>The first few distinct error messages (in request order) and how many requests failed with each.</summary>
    public IReadOnlyList<ErrorCount> Errors { get; init; } = [];

    /// <summary>Most requests in flight at once, as the client saw them.</summary>
    public int PeakConcurrentRequests { get; init; }

    /// <summary>Prompt tokens of the successful requests, as each response's usage reported them.</summary>
    public required long TotalInputTokens { get; init; }

    /// <summary>Generated tokens of the successful requests, as each response's usage reported them.</summary>
    public required long TotalOutputTokens { get; init; }

    /// <summary>Successful requests per second.</summary>
    public required double RequestThroughput { get; init; }

    /// <summary>Generated tokens per second.</summary>
    public required double OutputThroughput { get; init; }

    /// <summary>Prompt plus generated tokens per second.</summary>
    public required double TotalTokenThroughput { get; init; }

    /// <summary>Time to first token: from sending the request to the first chunk with text.</summary>
    public required LatencySummary TtftMs { get; init; }

    /// <summary>Time per output token after the first, one value per request with more than one token.</summary>
    public required LatencySummary TpotMs { get; init; }

    /// <summary>Inter-token latency: every gap between consecutive chunks with text, of all requests pooled.</summary>
    public required LatencySummary ItlMs { get; init; }

    /// <summary>End-to-end latency: from sending the request to the end of its stream.</summary>
    public required LatencySummary E2elMs { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    /// <summary>The result as vLLM prints it, one aligned "label: value" row per metric.</summary>
    public string ToTable() => ServingResultTable.Render(this);

    private static JsonSerializerOptions CreateJsonOptions()
    {
        var options = new JsonSerializerOptions
        {
            PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
            WriteIndented = true,
            // Statistics are kept finite, but a NaN must not turn a finished run into an exception.
            NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
            Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        };
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}
