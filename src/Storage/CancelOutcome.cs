namespace LlmServer.Storage;

public enum CancelOutcome
{
    /// <summary>The job had not started; it is cancelled now.</summary>
    Cancelled,
    /// <summary>The job is running; it is marked for the worker to stop, and ends cancelled.</summary>
    CancelRequested,
    /// <summary>The job had already succeeded, failed or been cancelled; nothing changed.</summary>
    AlreadyFinished,
    NotFound,
}

/// <summary>What <see cref="JobStore.RequestCancel"/> did, and the job as it is afterwards (null when not found).</summary>
public sealed record CancelResult(CancelOutcome Outcome, StoredJob? Job);
