namespace LlmServer.Bench.LoadTest;

/// <summary>One load test: what to send, how much of it, and how fast. Mirrors the flags of vLLM's <c>bench serve</c> with the random dataset.</summary>
public sealed record ServingBenchmarkOptions
{
    public const string CompletionsEndpoint = "/v1/completions";
    public const string ChatCompletionsEndpoint = "/v1/chat/completions";

    /// <summary>The server's root, e.g. <c>http://127.0.0.1:8000</c>; endpoint paths are appended to it.</summary>
    public required Uri BaseUrl { get; init; }

    /// <summary>Model to ask for; null takes the first id that <c>GET /v1/models</c> lists.</summary>
    public string? Model { get; init; }

    /// <summary><see cref="CompletionsEndpoint"/> or <see cref="ChatCompletionsEndpoint"/> (any path ending in <c>/chat/completions</c> is sent chat requests).</summary>
    public string Endpoint { get; init; } = CompletionsEndpoint;

    public int NumPrompts { get; init; } = 100;

    /// <summary>
    /// Requests sent before the clock starts, as vLLM's <c>--num-warmups</c>: at the same concurrency, with
    /// prompts drawn apart from the measured ones, their outcomes discarded. A server (or this client) that
    /// compiles or allocates on first use then shows its steady state.
    /// </summary>
    public int NumWarmups { get; init; }

    /// <summary>
    /// Prompt length in tokens. Exact for plain completions prompts, which are sent as token ids; approximate
    /// (one word per token) for chat and for prompts with a <see cref="SharedPrefix"/>, whose exact length
    /// the result takes from each response's usage.
    /// </summary>
    public int InputLength { get; init; } = 128;

    /// <summary>Tokens to generate per request; sent with <c>ignore_eos</c> so that every request generates exactly this many.</summary>
    public int OutputLength { get; init; } = 128;

    /// <summary>At most this many requests in flight; null for no limit.</summary>
    public int? MaxConcurrency { get; init; }

    /// <summary>Mean arrival rate in requests per second (Poisson arrivals); null or +infinity sends every request at once.</summary>
    public double? RequestRate { get; init; }

    /// <summary>Seeds both the prompts and the arrival times, so that two runs send the same load.</summary>
    public int Seed { get; init; }

    public double Temperature { get; init; }

    /// <summary>Text every prompt starts with, to measure prefix caching; the random part of <see cref="InputLength"/> words follows it.</summary>
    public string? SharedPrefix { get; init; }

    /// <summary>A request that has not finished after this long is recorded as failed.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);

    internal bool IsChat => Endpoint.TrimEnd('/').EndsWith("/chat/completions", StringComparison.Ordinal);

    internal bool SendsAllAtOnce => RequestRate is null || double.IsPositiveInfinity(RequestRate.Value);

    /// <summary>Appends <paramref name="path"/> to <see cref="BaseUrl"/> keeping any path prefix the base has (a proxy mount, say).</summary>
    internal Uri Resolve(string path) => new(BaseUrl.ToString().TrimEnd('/') + "/" + path.TrimStart('/'));

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot describe a load test.</summary>
    public void Validate()
    {
        if (!BaseUrl.IsAbsoluteUri || (BaseUrl.Scheme != Uri.UriSchemeHttp && BaseUrl.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"base URL '{BaseUrl}' must be an absolute http:// or https:// URL");
        }
        if (!Endpoint.StartsWith('/') || !Endpoint.TrimEnd('/').EndsWith("/completions", StringComparison.Ordinal))
        {
            throw new ArgumentException($"endpoint '{Endpoint}' must be {CompletionsEndpoint} or {ChatCompletionsEndpoint}");
        }
        RequirePositive(NumPrompts, "number of prompts");
        if (NumWarmups < 0)
        {
            throw new ArgumentException($"number of warm-up requests must be 0 or more, not {NumWarmups}");
        }
        RequirePositive(InputLength, "input length");
        RequirePositive(OutputLength, "output length");
        if (MaxConcurrency is { } concurrency)
        {
            RequirePositive(concurrency, "max concurrency");
        }
        if (RequestRate is { } rate && (double.IsNaN(rate) || rate <= 0))
        {
            throw new ArgumentException($"request rate must be positive (or infinite), not {rate}");
        }
        if (double.IsNaN(Temperature) || Temperature < 0)
        {
            throw new ArgumentException($"temperature must be 0 or more, not {Temperature}");
        }
        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"request timeout must be positive, not {RequestTimeout}");
        }
    }

    private static void RequirePositive(int value, string what)
    {
        if (value <= 0)
        {
            throw new ArgumentException($"{what} must be at least 1, not {value}");
        }
    }
}
