using System.Text.Json;
using System.Text.Json.Serialization;
using LlmServer.Storage;

namespace LlmServer.FineTuning;

/// <summary>POST /v1/fine_tuning/jobs. Field values are checked by the service, which names the field it refuses; a field OpenAI's request does not have is refused too.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record CreateFineTuningJobRequest
{
    public string? Model { get; init; }
    public string? TrainingFile { get; init; }
    public string? ValidationFile { get; init; }
    /// <summary>Deprecated by OpenAI in favour of method.supervised.hyperparameters, and still sent by older clients.</summary>
    public FineTuningHyperparametersRequest? Hyperparameters { get; init; }
    public FineTuneMethodRequest? Method { get; init; }
    public string? Suffix { get; init; }
    public int? Seed { get; init; }
    public Dictionary<string, string>? Metadata { get; init; }
    public JsonElement Integrations { get; init; }
}

public sealed record FineTuneMethodRequest
{
    public string? Type { get; init; }
    public FineTuneSupervisedMethodRequest? Supervised { get; init; }
}

public sealed record FineTuneSupervisedMethodRequest
{
    public FineTuningHyperparametersRequest? Hyperparameters { get; init; }
}

/// <summary>
/// Hyperparameters as sent: each is "auto" or a number, kept raw so a bad one gets a message
/// naming it. Names outside OpenAI's and our LoRA extension land in <see cref="Unknown"/> and are refused.
/// </summary>
public sealed record FineTuningHyperparametersRequest
{
    public JsonElement NEpochs { get; init; }
    public JsonElement BatchSize { get; init; }
    public JsonElement LearningRateMultiplier { get; init; }
    public JsonElement LoraRank { get; init; }
    public JsonElement LoraAlpha { get; init; }
    public JsonElement LoraTargetModules { get; init; }

    [JsonExtensionData]
    public Dictionary<string, JsonElement>? Unknown { get; init; }
}

/// <summary>OpenAI's fine_tuning.job, with our LoRA settings inside the hyperparameters.</summary>
public sealed record FineTuningJob(
    string Id,
    long CreatedAt,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] FineTuningJobError? Error,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? FineTunedModel,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] long? FinishedAt,
    FineTuningHyperparameters Hyperparameters,
    string Model,
    string OrganizationId,
    IReadOnlyList<string> ResultFiles,
    string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] long? TrainedTokens,
    string TrainingFile,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? ValidationFile,
    int Seed,
    FineTuneMethod Method,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] IReadOnlyDictionary<string, string>? Metadata,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? UserProvidedSuffix)
{
    public string Object => "fine_tuning.job";

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public IReadOnlyList<object>? Integrations => null;

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public long? EstimatedFinish => null;

    /// <summary>
    /// The job as clients see it: each hyperparameter is the value training uses once the worker
    /// has resolved it, until then what was asked for ("auto" included).
    /// </summary>
    public static FineTuningJob From(StoredJob job)
    {
        JobHyperparameters requested = job.Hyperparameters, resolved = job.ResolvedHyperparameters ?? JobHyperparameters.Auto;
        var hyperparameters = new FineTuningHyperparameters(
            new HyperparameterValue(resolved.NEpochs ?? requested.NEpochs),
            new HyperparameterValue(resolved.BatchSize ?? requested.BatchSize),
            new HyperparameterValue(resolved.LearningRateMultiplier ?? requested.LearningRateMultiplier),
            job.Lora.Rank,
            job.Lora.Alpha,
            job.Lora.TargetModules);
        return new FineTuningJob(
            job.Id,
            job.CreatedAt,
            job.Error is { } error ? new FineTuningJobError(error.Code, error.Message, error.Param) : null,
            job.FineTunedModel,
            job.FinishedAt,
            hyperparameters,
            job.Model,
            job.Organization,
            [],
            job.Status.ToWire(),
            job.TrainedTokens,
            job.TrainingFile,
            job.ValidationFile,
            job.Seed,
            new FineTuneMethod(job.Method, new FineTuneSupervisedMethod(hyperparameters)),
            job.Metadata,
            job.Suffix);
    }
}

public sealed record FineTuningJobError(string Code, string Message, [property: JsonIgnore(Condition = JsonIgnoreCondition.Never)] string? Param);

/// <summary>
/// OpenAI's n_epochs, batch_size and learning_rate_multiplier, and our extension: lora_rank (0 is
/// a full fine-tune), lora_alpha and lora_target_modules.
/// </summary>
public sealed record FineTuningHyperparameters(
    HyperparameterValue NEpochs,
    HyperparameterValue BatchSize,
    HyperparameterValue LearningRateMultiplier,
    int LoraRank,
    double LoraAlpha,
    IReadOnlyList<string> LoraTargetModules);

public sealed record FineTuneMethod(string Type, FineTuneSupervisedMethod Supervised);

public sealed record FineTuneSupervisedMethod(FineTuningHyperparameters Hyperparameters);

public sealed record FineTuningJobList(IReadOnlyList<FineTuningJob> Data, bool HasMore)
{
    public string Object => "list";
}

/// <summary>OpenAI's fine_tuning.job.event; <c>data</c> carries a metrics event's numbers and is <c>{}</c> for messages, as OpenAI sends it (the spec types it an object).</summary>
public sealed record FineTuningJobEvent(
    string Id,
    long CreatedAt,
    string Level,
    string Message,
    string Type,
    JsonElement Data)
{
    public string Object => "fine_tuning.job.event";

    private static readonly JsonElement NoData = JsonDocument.Parse("{}").RootElement.Clone();

    public static FineTuningJobEvent From(StoredJobEvent stored)
    {
        JsonElement data = NoData;
        if (stored.DataJson is { } json)
        {
            using JsonDocument document = JsonDocument.Parse(json);
            data = document.RootElement.Clone();
        }
        return new FineTuningJobEvent(stored.Id, stored.CreatedAt, stored.Level.ToString().ToLowerInvariant(), stored.Message,
            stored.Type.ToString().ToLowerInvariant(), data);
    }
}

public sealed record FineTuningJobEventList(IReadOnlyList<FineTuningJobEvent> Data, bool HasMore)
{
    public string Object => "list";
}

/// <summary>OpenAI's fine_tuning.job.checkpoint.</summary>
public sealed record FineTuningJobCheckpoint(
    string Id,
    long CreatedAt,
    string FineTunedModelCheckpoint,
    int StepNumber,
    FineTuningCheckpointMetrics Metrics,
    string FineTuningJobId)
{
    public string Object => "fine_tuning.job.checkpoint";

    public static FineTuningJobCheckpoint From(StoredCheckpoint stored)
    {
        CheckpointMetrics m = stored.Metrics;
        return new FineTuningJobCheckpoint(stored.Id, stored.CreatedAt, stored.FineTunedModelCheckpoint, stored.StepNumber,
            new FineTuningCheckpointMetrics(m.Step, m.TrainLoss, m.TrainMeanTokenAccuracy, m.ValidLoss, m.ValidMeanTokenAccuracy,
                m.FullValidLoss, m.FullValidMeanTokenAccuracy),
            stored.JobId);
    }
}

/// <summary>Metrics at a checkpoint; those not measured (no validation file) are left out.</summary>
public sealed record FineTuningCheckpointMetrics(
    double Step,
    double? TrainLoss,
    double? TrainMeanTokenAccuracy,
    double? ValidLoss,
    double? ValidMeanTokenAccuracy,
    double? FullValidLoss,
    double? FullValidMeanTokenAccuracy);

public sealed record FineTuningJobCheckpointList(IReadOnlyList<FineTuningJobCheckpoint> Data, bool HasMore)
{
    public string Object => "list";

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? FirstId => Data.Count > 0 ? Data[0].Id : null;

    [JsonIgnore(Condition = JsonIgnoreCondition.Never)]
    public string? LastId => Data.Count > 0 ? Data[^1].Id : null;
}
