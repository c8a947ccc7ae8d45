namespace LlmServer.Bench.LoadTest;

/// <summary>One distinct error message of a run and how many requests failed with it.</summary>
public sealed record ErrorCount(string Message, int Count);
