namespace LlmServer.Inference.Scheduling;

public sealed record SchedulerOptions
{
    /// <summary>Tokens one forward pass may process, prompt chunks and decodes together.</summary>
    public int MaxNumBatchedTokens { get; init; } = 2048;
    /// <summary>Requests that may be running (holding cache blocks) at once.</summary>
    public int MaxNumSeqs { get; init; } = 64;
}
