using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using LlmServer.Files;
using LlmServer.Host;
using LlmServer.OpenAi;
using LlmServer.Storage;
using Microsoft.Extensions.Options;

namespace LlmServer.FineTuning;

/// <summary>
/// OpenAI's fine-tuning jobs API over the job store: checks a create request field by field (a
/// refusal names the field, as OpenAI's do), records the job, and wakes the worker, which does
/// the training. Cancel reaches a running job through <see cref="JobSignals"/>.
/// </summary>
public sealed partial class FineTuningJobService(
    JobStore jobs, FineTuningStore files, IFineTunableModels models, JobSignals signals, IOptions<ServerOptions> options)
{
    private const string SupervisedHyperparameters = "method.supervised.hyperparameters";
    private const int MaxSuffixLength = 64, MaxMetadataPairs = 16, MaxMetadataKeyLength = 64, MaxMetadataValueLength = 512;

    public FineTuningJob Create(CreateFineTuningJobRequest request)
    {
        if (string.IsNullOrEmpty(request.Model))
        {
            throw Missing("model");
        }
        FineTunableModel model = models.Find(request.Model) ?? throw new ApiException(StatusCodes.Status404NotFound,
            $"The model `{request.Model}` does not exist or cannot be fine-tuned on this server.", param: "model", code: "model_not_found");
        if (string.IsNullOrEmpty(request.TrainingFile))
        {
            throw Missing("training_file");
        }
        CheckFile(request.TrainingFile, "training_file");
        if (request.ValidationFile is not null)
        {
            CheckFile(request.ValidationFile, "validation_file");
        }
        CheckSuffix(request.Suffix);
        if (request.Seed is < 0)
        {
            throw ApiException.InvalidParameter("seed", "seed must be an integer from 0 to 2147483647.");
        }
        CheckMetadata(request.Metadata);
        if (request.Integrations.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null)
            && !(request.Integrations.ValueKind == JsonValueKind.Array && request.Integrations.GetArrayLength() == 0))
        {
            throw ApiException.InvalidParameter("integrations", "This server has no integrations (such as wandb); leave integrations out.");
        }

        RequestedHyperparameters hyperparameters = RequestedHyperparameters.Parse(request.Hyperparameters, "hyperparameters")
            .Merge(RequestedHyperparameters.Parse(SupervisedMethod(request.Method)?.Hyperparameters, SupervisedHyperparameters));

        StoredJob job = jobs.CreateJob(new NewJob(
            model.Name,
            options.Value.Organization,
            request.TrainingFile,
            request.ValidationFile,
            request.Suffix,
            request.Seed,
            hyperparameters.ToJobHyperparameters(),
            hyperparameters.ToLoraSettings(model.AdaptableLayers),
            request.Metadata));
        signals.NotifyJobCreated();
        return FineTuningJob.From(job);
    }

    public FineTuningJobList List(string? after, string? limit)
    {
        (IReadOnlyList<StoredJob> page, bool hasMore) = jobs.ListJobs(after, PageSize(limit, 20));
        return new FineTuningJobList([.. page.Select(FineTuningJob.From)], hasMore);
    }

    public FineTuningJob Get(string id) => FineTuningJob.From(Find(id));

    /// <summary>
    /// A job that has not started is cancelled at once; a running one is returned still running,
    /// marked for the worker, which stops it and ends it cancelled. A finished job is refused and left alone.
    /// </summary>
    public FineTuningJob Cancel(string id)
    {
        CancelResult result = jobs.RequestCancel(id);
        switch (result.Outcome)
        {
            case CancelOutcome.NotFound:
                throw NoSuchJob(id);
            case CancelOutcome.AlreadyFinished:
                string state = result.Job!.Status switch
                {
                    JobStatus.Succeeded => "has already succeeded",
                    JobStatus.Failed => "has already failed",
                    _ => "has already been cancelled",
                };
                throw new ApiException(StatusCodes.Status400BadRequest, $"Job {id} {state} and cannot be cancelled.",
                    param: "fine_tuning_job_id", code: "job_already_finished");
            case CancelOutcome.CancelRequested:
                signals.Cancel(id);
                break;
        }
        return FineTuningJob.From(result.Job!);
    }

    public FineTuningJobEventList ListEvents(string id, string? after, string? limit)
    {
        Find(id);
        (IReadOnlyList<StoredJobEvent> page, bool hasMore) = jobs.ListEvents(id, after, PageSize(limit, 20));
        return new FineTuningJobEventList([.. page.Select(FineTuningJobEvent.From)], hasMore);
    }

    public FineTuningJobCheckpointList ListCheckpoints(string id, string? after, string? limit)
    {
        Find(id);
        (IReadOnlyList<StoredCheckpoint> page, bool hasMore) = jobs.ListCheckpoints(id, after, PageSize(limit, 10));
        return new FineTuningJobCheckpointList([.. page.Select(FineTuningJobCheckpoint.From)], hasMore);
    }

    private StoredJob Find(string id) => jobs.GetJob(id) ?? throw NoSuchJob(id);

    private static ApiException NoSuchJob(string id) =>
        new(StatusCodes.Status404NotFound, $"No such fine-tuning job: {id}", param: "fine_tuning_job_id");

    private static ApiException Missing(string param) =>
        new(StatusCodes.Status400BadRequest, $"Missing required parameter: '{param}'.", param: param, code: "missing_required_parameter");

    // Taken as text: a limit that is not a number gets OpenAI's error naming it, not an empty 400 from the binder.
    private static int PageSize(string? limit, int defaultSize) =>
        limit is null ? defaultSize
        : int.TryParse(limit, NumberStyles.None, CultureInfo.InvariantCulture, out int size) && size is >= 1 and <= 100 ? size
        : throw ApiException.InvalidParameter("limit", "limit must be an integer between 1 and 100.");

    private static FineTuneSupervisedMethodRequest? SupervisedMethod(FineTuneMethodRequest? method)
    {
        if (method is null)
        {
            return null;
        }
        if (string.IsNullOrEmpty(method.Type))
        {
            throw Missing("method.type");
        }
        if (method.Type != NewJob.SupervisedMethod)
        {
            throw ApiException.InvalidParameter("method.type", $"Only the supervised method is supported, not '{method.Type}'.");
        }
        return method.Supervised;
    }

    // The same file may serve as training and validation data; OpenAI only advises against it.
    private void CheckFile(string id, string param)
    {
        StoredFile file = files.FindFile(id)
            ?? throw ApiException.InvalidParameter(param, $"invalid {param}: {id}: no such file. Upload it with POST /v1/files (purpose fine-tune).");
        if (file.Purpose != FileService.FineTunePurpose)
        {
            throw ApiException.InvalidParameter(param, $"invalid {param}: {id} was uploaded with purpose '{file.Purpose}', not '{FileService.FineTunePurpose}'.");
        }
    }

    // ':' separates the parts of a fine-tuned model's name, so the suffix must not contain one.
    private static void CheckSuffix(string? suffix)
    {
        if (suffix is not null && (suffix.Length is 0 or > MaxSuffixLength || !SuffixCharacters().IsMatch(suffix)))
        {
            throw ApiException.InvalidParameter("suffix",
                $"suffix must be 1 to {MaxSuffixLength} letters, digits, '-' or '_' (it becomes part of the model name ft:base:org:suffix:job).");
        }
    }

    private static void CheckMetadata(Dictionary<string, string>? metadata)
    {
        if (metadata is null)
        {
            return;
        }
        if (metadata.Count > MaxMetadataPairs)
        {
            throw ApiException.InvalidParameter("metadata", $"metadata has {metadata.Count} pairs; at most {MaxMetadataPairs} are allowed.");
        }
        foreach ((string key, string? value) in metadata)
        {
            if (value is null)
            {
                throw ApiException.InvalidParameter($"metadata.{key}", "metadata values are strings.");
            }
            if (key.Length > MaxMetadataKeyLength)
            {
                throw ApiException.InvalidParameter("metadata", $"metadata keys are at most {MaxMetadataKeyLength} characters; '{key[..16]}...' is longer.");
            }
            if (value.Length > MaxMetadataValueLength)
            {
                throw ApiException.InvalidParameter($"metadata.{key}", $"metadata values are at most {MaxMetadataValueLength} characters.");
            }
        }
    }

    [GeneratedRegex("^[A-Za-z0-9_-]+$")]
    private static partial Regex SuffixCharacters();
}
