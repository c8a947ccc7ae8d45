namespace LlmServer.Bench.LoadTest;

/// <summary>
/// What one benchmark request measured. Times are in milliseconds from the moment the request was sent;
/// <see cref="TimeToFirstTokenMs"/> is null when no chunk carried text.
/// </summary>
internal sealed record RequestOutcome
{
    public string? Error { get; init; }
    public bool Succeeded => Error is null;

    /// <summary>The server answered 429: overload, which a capacity test wants to tell apart from failures.</summary>
    public bool RateLimited { get; init; }

    public double? TimeToFirstTokenMs { get; init; }

    /// <summary>The gaps between consecutive chunks that carried text, in arrival order.</summary>
    public IReadOnlyList<double> InterTokenLatenciesMs { get; init; } = [];

    /// <summary>From sending the request to the end of its stream.</summary>
    public double LatencyMs { get; init; }

    public int PromptTokens { get; init; }
    public int CompletionTokens { get; init; }

    public static RequestOutcome Failed(string error, double latencyMs, bool rateLimited = false) =>
        new() { Error = error, LatencyMs = latencyMs, RateLimited = rateLimited };
}
