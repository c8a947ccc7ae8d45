using System.Text.Json.Serialization;

namespace LlmServer.Storage;

/// <summary>
/// OpenAI's supervised hyperparameters. Null means "auto": the worker resolves it from the data
/// (how many examples there are) when the job starts, and records the resolved copy beside the
/// requested one, so the API can show what was asked for until it knows what was used.
/// </summary>
public sealed record JobHyperparameters(int? NEpochs, int? BatchSize, double? LearningRateMultiplier)
{
    public static readonly JobHyperparameters Auto = new(null, null, null);

    [JsonIgnore]
    public bool IsResolved => NEpochs is not null && BatchSize is not null && LearningRateMultiplier is not null;
}
