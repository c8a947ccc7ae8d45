namespace LlmServer.Storage;

/// <summary>
/// A checkpoint a job wrote: <paramref name="FineTunedModelCheckpoint"/> is the name clients
/// select it by, <paramref name="Path"/> where its weights are.
/// </summary>
public sealed record StoredCheckpoint(
    string Id,
    string JobId,
    long CreatedAt,
    int StepNumber,
    CheckpointMetrics Metrics,
    string FineTunedModelCheckpoint,
    string Path);
