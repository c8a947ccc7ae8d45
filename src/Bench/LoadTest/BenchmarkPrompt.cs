namespace LlmServer.Bench.LoadTest;

/// <summary>
/// One request's prompt: token ids when the length must be exact (completions), text otherwise.
/// <paramref name="PlannedTokens"/> is the intended length, used only when a response reports no usage.
/// </summary>
internal sealed record BenchmarkPrompt(int[]? TokenIds, string? Text, int PlannedTokens);
