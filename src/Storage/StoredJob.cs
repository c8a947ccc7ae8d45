using LlmServer.Inference.Models.Lora;

namespace LlmServer.Storage;

/// <summary>
/// A fine-tuning job as the store records it. <see cref="ResolvedHyperparameters"/> is null until
/// the worker has resolved the "auto" values; <see cref="CancelRequested"/> is set when a client
/// cancelled the job while it was running, for the worker to stop it.
/// </summary>
public sealed record StoredJob(
    string Id,
    long CreatedAt,
    string Model,
    string Organization,
    string TrainingFile,
    string? ValidationFile,
    string? Suffix,
    int Seed,
    string Method,
    JobHyperparameters Hyperparameters,
    JobHyperparameters? ResolvedHyperparameters,
    LoraSettings Lora,
    IReadOnlyDictionary<string, string>? Metadata,
    JobStatus Status,
    long? StartedAt,
    long? FinishedAt,
    string? FineTunedModel,
    long? TrainedTokens,
    JobError? Error,
    bool CancelRequested,
    string? OutputPath);
