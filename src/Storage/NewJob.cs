using LlmServer.Inference.Models.Lora;

namespace LlmServer.Storage;

/// <summary>
/// A validated request to fine-tune, as the store records it. <paramref name="Seed"/> null lets
/// the store pick one, as OpenAI does, so every job has the seed it can be reproduced with.
/// </summary>
public sealed record NewJob(
    string Model,
    string Organization,
    string TrainingFile,
    string? ValidationFile,
    string? Suffix,
    int? Seed,
    JobHyperparameters Hyperparameters,
    LoraSettings Lora,
    IReadOnlyDictionary<string, string>? Metadata)
{
    /// <summary>OpenAI's method type; the only one this server trains.</summary>
    public const string SupervisedMethod = "supervised";
}
