using System.Net;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// The one HttpClient every benchmark request goes through, so that connections are pooled across
/// requests and runs the way a real client fleet would reuse them.
/// </summary>
internal static class BenchmarkHttpClient
{
    private static readonly Lazy<HttpClient> Client = new(Create);

    public static HttpClient Shared => Client.Value;

    private static HttpClient Create()
    {
        var handler = new SocketsHttpHandler
        {
            // Concurrency is the benchmark's to limit (MaxConcurrency), not the connection pool's.
            MaxConnectionsPerServer = int.MaxValue,
            // Picks up DNS changes on long suite runs without tearing connections down mid-measurement.
            PooledConnectionLifetime = TimeSpan.FromMinutes(15),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(30),
            // A proxy from the environment would add its own latency to every number measured.
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
        };
        // Each request carries its own timeout (ServingBenchmarkOptions.RequestTimeout): a long stream is not a hung one.
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }
}
