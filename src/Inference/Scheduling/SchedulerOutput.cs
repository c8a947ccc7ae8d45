namespace LlmServer.Inference.Scheduling;

/// <summary>One request's share of a step: compute tokens [NumComputedTokens, NumComputedTokens + NumScheduledTokens).</summary>
public readonly record struct ScheduledRequest(Request Request, int NumScheduledTokens)
{
    /// <summary>True when this step reaches the request's last known token, so a new token is sampled.
    /// Fixed when scheduled: the request's counts move on once the step is committed.</summary>
    public bool SamplesToken { get; } = Request.NumComputedTokens + NumScheduledTokens == Request.NumTokens;

    /// <summary>Where this step's tokens start in the request, also fixed when scheduled.</summary>
    public int FirstPosition { get; } = Request.NumComputedTokens;
}

/// <summary>What one engine step runs, plus the requests that lost their blocks in making room.</summary>
public sealed record SchedulerOutput(IReadOnlyList<ScheduledRequest> Scheduled, IReadOnlyList<Request> Preempted)
{
    /// <summary>
    /// Nothing runs this step. Happens only when making room evicted every running request, the one
    /// being scheduled included; the next <see cref="Scheduler.Schedule"/> readmits the oldest of
    /// them with the whole pool free.
    /// </summary>
    public bool IsEmpty => Scheduled.Count == 0;

    /// <summary>Prompt tokens this step computes (recomputation after preemption counts again).</summary>
    public int NumPromptTokens => Scheduled.Sum(item =>
        Math.Max(0, Math.Min(item.Request.PromptLength, item.FirstPosition + item.NumScheduledTokens) - item.FirstPosition));
}
