namespace LlmServer.Bench.Progress;

/// <summary>Where a load test stands: <paramref name="Completed"/> counts finished requests, the failed ones included.</summary>
public readonly record struct BenchmarkProgress(int Completed, int Total, int Errors, TimeSpan Elapsed);
