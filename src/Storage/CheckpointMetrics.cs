namespace LlmServer.Storage;

/// <summary>OpenAI's checkpoint metrics; a value the trainer did not measure (no validation file) is null.</summary>
public sealed record CheckpointMetrics(
    double Step,
    double? TrainLoss = null,
    double? TrainMeanTokenAccuracy = null,
    double? ValidLoss = null,
    double? ValidMeanTokenAccuracy = null,
    double? FullValidLoss = null,
    double? FullValidMeanTokenAccuracy = null);
