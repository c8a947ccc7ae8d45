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
    public bool IsEmpty => Scheduled.Count == 0;
}
