using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using LlmServer.Host;
using LlmServer.Inference.Engine;
using LlmServer.Observability;
using LlmServer.Storage;
using LlmServer.Training.Data;
using LlmServer.Training.FineTuning;
using Microsoft.Extensions.Options;

namespace LlmServer.FineTuning;

/// <summary>
/// Runs fine-tuning jobs, one at a time, from the durable queue in the job store: validates a new
/// job's data, resolves its "auto" hyperparameters, trains it on the engine thread in slices
/// between serving steps, records its metrics and checkpoints as they come, and serves the result
/// under its ft: name before marking it succeeded. After a restart it serves every earlier result
/// again and resumes a job that was running from its last checkpoint.
/// </summary>
public sealed class FineTuningWorker(
    JobStore jobs,
    FineTuningStore files,
    JobSignals signals,
    IEngineClient engine,
    IEngineModelAdministration administration,
    IOptions<ServerOptions> options,
    IHostApplicationLifetime lifetime,
    ILogger<FineTuningWorker> logger) : BackgroundService
{
    /// <summary>Peak learning rates that a learning_rate_multiplier of 1 means.</summary>
    public const double LoraBaseLearningRate = 1e-3, FullBaseLearningRate = 1e-4;

    public const string JobSpan = "fine_tuning.job", JobIdTag = "llmserver.fine_tuning.job_id";

    private static readonly JsonSerializerOptions MetricsJson = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    protected override async Task ExecuteAsync(CancellationToken hostStopping)
    {
        // Training stops the moment shutdown begins, not after the request drain: a running job stays
        // resumable from its last checkpoint, and the engine thread is left to the requests in flight.
        using var shutdown = CancellationTokenSource.CreateLinkedTokenSource(hostStopping, lifetime.ApplicationStopping);
        CancellationToken stopping = shutdown.Token;
        // Jobs are traces of their own, not children of whatever span started the host.
        Activity.Current = null;
        try
        {
            await engine.Ready.WaitAsync(stopping);
        }
        catch (Exception)
        {
            // The engine failed to load, or the host stopped before it was ready (a port in use):
            // either way the host is stopping and there is nothing to train.
            return;
        }
        await Guarded(RestoreAfterRestartAsync, "restoring fine-tuning state after a restart", stopping);
        await Task.WhenAll(ValidateLoopAsync(stopping), TrainLoopAsync(stopping));
    }

    /// <summary>
    /// Runs one round of a loop, logging what it did not expect (a full disk, a locked database)
    /// instead of letting it end the worker, which would stop the whole host.
    /// </summary>
    private async Task Guarded(Func<Task> round, string what, CancellationToken stopping)
    {
        try
        {
            await round();
        }
        catch (Exception e) when (!stopping.IsCancellationRequested)
        {
            logger.LogError(e, "Fine-tuning worker failed {What}; it carries on", what);
            await Task.Delay(TimeSpan.FromSeconds(1), stopping).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Moves new jobs on to queued (or failed, saying why) as they arrive, even while another job trains.</summary>
    private async Task ValidateLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            await Guarded(() =>
            {
                foreach (StoredJob job in jobs.ListJobsWithStatus(JobStatus.ValidatingFiles))
                {
                    Validate(job);
                }
                return Task.CompletedTask;
            }, "validating new jobs", stopping);
            await WaitForWorkAsync(stopping);
        }
    }

    private async Task TrainLoopAsync(CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            bool ran = false;
            await Guarded(async () =>
            {
                if (jobs.ClaimNextJob(JobStatus.Queued, JobStatus.Running) is { } job)
                {
                    ran = true;
                    using Activity? span = ServerTelemetry.Source.StartActivity(JobSpan);
                    span?.SetTag(JobIdTag, job.Id);
                    span?.SetTag("gen_ai.request.model", job.Model);
                    try
                    {
                        await RunAsync(job, stopping);
                    }
                    finally
                    {
                        if (span is not null && jobs.GetJob(job.Id) is { } ended)
                        {
                            span.SetTag("llmserver.fine_tuning.status", ended.Status.ToString());
                            span.SetTag("llmserver.fine_tuning.trained_tokens", ended.TrainedTokens);
                            if (ended.Status == JobStatus.Failed)
                            {
                                span.SetStatus(ActivityStatusCode.Error, ended.Error?.Message);
                            }
                        }
                    }
                }
            }, "running a job", stopping);
            if (!ran)
            {
                await WaitForWorkAsync(stopping);
            }
        }
    }

    /// <summary>Until a job is created or a second passes (the other loop may have taken the wake-up).</summary>
    private async Task WaitForWorkAsync(CancellationToken stopping)
    {
        try
        {
            await signals.WaitForJobAsync(stopping).WaitAsync(TimeSpan.FromSeconds(1), stopping);
        }
        catch (TimeoutException)
        {
        }
        catch (OperationCanceledException)
        {
        }
    }

    private void Validate(StoredJob job)
    {
        using Activity? span = ServerTelemetry.Source.StartActivity("fine_tuning.validate_files");
        span?.SetTag(JobIdTag, job.Id);
        try
        {
            ServedModel baseModel = BaseModel(job);
            TrainingDataset training = LoadDataset(job.TrainingFile, baseModel);
            if (job.ValidationFile is { } validationFile)
            {
                LoadDataset(validationFile, baseModel);
            }
            JobHyperparameters resolved = Resolve(job.Hyperparameters, training.Examples.Count);
            jobs.SetResolvedHyperparameters(job.Id, resolved);
            if (training.TruncatedCount > 0 || training.DroppedCount > 0)
            {
                jobs.AddEvent(job.Id, JobEventLevel.Warn,
                    $"{training.TruncatedCount} training examples were longer than the model's context and were truncated; " +
                    $"{training.DroppedCount} had no assistant or completion tokens left to train and were dropped.");
            }
            jobs.AddEvent(job.Id, JobEventLevel.Info, string.Create(CultureInfo.InvariantCulture,
                $"Files validated: {training.Examples.Count} training examples, {training.TrainedTokenCount} trained tokens per epoch."));
            jobs.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued);
        }
        catch (JobFailure failure)
        {
            jobs.MarkFailed(job.Id, failure.Code, failure.Message, failure.Param);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            jobs.MarkFailed(job.Id, "invalid_training_file", $"The training data could not be read: {e.Message}", "training_file");
        }
    }

    private async Task RunAsync(StoredJob job, CancellationToken stopping)
    {
        CancellationToken cancelled = signals.TokenFor(job.Id);
        try
        {
            if (job.CancelRequested)
            {
                jobs.MarkCancelled(job.Id);
                return;
            }
            ServedModel baseModel = BaseModel(job);
            JobHyperparameters hyperparameters = job.ResolvedHyperparameters ?? throw new JobFailure("internal_error", "the job was queued without resolved hyperparameters");
            TrainingDataset trainingSet;
            TrainingDataset? validationSet;
            using (ServerTelemetry.Source.StartActivity("fine_tuning.load_data"))
            {
                trainingSet = LoadDataset(job.TrainingFile, baseModel);
                validationSet = job.ValidationFile is { } validationFile ? LoadDataset(validationFile, baseModel) : null;
            }
            bool lora = !job.Lora.IsFullFineTune;
            var settings = new TrainingSettings
            {
                Epochs = hyperparameters.NEpochs!.Value,
                BatchSize = hyperparameters.BatchSize!.Value,
                LearningRate = (lora ? LoraBaseLearningRate : FullBaseLearningRate) * hyperparameters.LearningRateMultiplier!.Value,
                Seed = job.Seed,
                Lora = lora ? job.Lora : null,
            };
            string outputDirectory = Path.Combine(Path.GetFullPath(options.Value.DataDir), "models", job.Id);
            string fineTunedModel = FineTunedModelName.For(job.Model, job.Organization, job.Suffix, job.Id);
            string? resumeFrom = LatestCheckpoint(job.Id);
            if (resumeFrom is not null)
            {
                jobs.AddEvent(job.Id, JobEventLevel.Info, $"Resuming from checkpoint {Path.GetFileName(resumeFrom)}");
            }

            var events = Channel.CreateUnbounded<TrainingEvent>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancelled, stopping);
            Task training = administration.RunBackgroundAsync(access =>
            {
                (Inference.Models.ICausalLanguageModel model, ServedModel served) = access.UseFullModel(job.Model);
                var inputs = new FineTuningInputs(model, served.Directory, trainingSet, validationSet, settings, outputDirectory);
                FineTuningRun run = resumeFrom is null ? FineTuningRun.Start(inputs) : FineTuningRun.Resume(inputs, resumeFrom);
                return new TrainingWork(run, events.Writer);
            }, stop.Token);
            _ = training.ContinueWith(_ => events.Writer.TryComplete(), TaskScheduler.Default);

            var progress = new Progress(job.Id, fineTunedModel);
            using (ServerTelemetry.Source.StartActivity("fine_tuning.train"))
            {
                await foreach (TrainingEvent finished in events.Reader.ReadAllAsync(CancellationToken.None))
                {
                    Record(progress, finished);
                }
            }
            try
            {
                await training;
            }
            catch (OperationCanceledException) when (!cancelled.IsCancellationRequested)
            {
                // Shutting down mid-job (the host stopping us, or the engine stopping first when the drain
                // timed out; only a client's cancel is a cancel): it stays running in the store and resumes at the next start.
                jobs.AddEvent(job.Id, JobEventLevel.Info, "Server shutting down; the job will resume from its last checkpoint");
                return;
            }
            catch (OperationCanceledException)
            {
                jobs.MarkCancelled(job.Id);
                return;
            }

            string finalDirectory = progress.FinalDirectory ?? throw new JobFailure("training_failed", "training ended without writing its final model");
            // Served before it is reported: a client that sees "succeeded" can use the model at once.
            using (ServerTelemetry.Source.StartActivity("fine_tuning.serve"))
            {
                await administration.LoadModelAsync(fineTunedModel, finalDirectory, lora ? baseModel.Name : null);
            }
            if (!jobs.MarkSucceeded(job.Id, fineTunedModel, progress.TrainedTokens, finalDirectory))
            {
                // Cancelled in the last instant: an accepted cancel wins over the result.
                await administration.UnloadModelAsync(fineTunedModel);
                jobs.MarkCancelled(job.Id);
            }
        }
        catch (JobFailure failure)
        {
            jobs.MarkFailed(job.Id, failure.Code, failure.Message, failure.Param);
        }
        catch (ModelAdministrationException e)
        {
            jobs.MarkFailed(job.Id, "model_unavailable", e.Message, "model");
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException)
        {
            jobs.MarkFailed(job.Id, "training_failed", e.Message);
        }
        catch (Exception e) when (!stopping.IsCancellationRequested)
        {
            logger.LogError(e, "Fine-tuning job {JobId} failed", job.Id);
            jobs.MarkFailed(job.Id, "training_failed", $"training failed: {e.Message}");
        }
        finally
        {
            signals.Forget(job.Id);
        }
    }

    private void Record(Progress progress, TrainingEvent finished)
    {
        switch (finished)
        {
            case OptimizerStepCompleted step:
                progress.TrainedTokens = step.TrainedTokens;
                progress.LastTrainLoss = step.TrainLoss;
                progress.LastTrainAccuracy = step.TrainTokenAccuracy;
                jobs.AddEvent(progress.JobId, JobEventLevel.Info,
                    string.Create(CultureInfo.InvariantCulture, $"Step {step.Step}/{step.TotalSteps}: training loss={step.TrainLoss:0.####}"),
                    JobEventType.Metrics, JsonSerializer.Serialize(new StepMetrics(step.Step, step.TrainLoss, step.TrainTokenAccuracy, step.TotalSteps,
                        step.LearningRate, step.Epoch), MetricsJson));
                break;
            case EpochCompleted epoch:
                progress.ValidLoss = epoch.ValidationLoss;
                progress.ValidAccuracy = epoch.ValidationTokenAccuracy;
                if (epoch.ValidationLoss is double validLoss)
                {
                    jobs.AddEvent(progress.JobId, JobEventLevel.Info,
                        string.Create(CultureInfo.InvariantCulture, $"Epoch {epoch.Epoch}: validation loss={validLoss:0.####}"),
                        JobEventType.Metrics, JsonSerializer.Serialize(new ValidationMetrics(epoch.Step, validLoss, epoch.ValidationTokenAccuracy,
                            validLoss, epoch.ValidationTokenAccuracy), MetricsJson));
                }
                break;
            case CheckpointSaved checkpoint:
                string name = FineTunedModelName.ForCheckpoint(progress.FineTunedModel, checkpoint.Step);
                jobs.AddCheckpoint(progress.JobId, checkpoint.Step, new CheckpointMetrics(checkpoint.Step, progress.LastTrainLoss,
                    progress.LastTrainAccuracy, progress.ValidLoss, progress.ValidAccuracy, progress.ValidLoss, progress.ValidAccuracy), name, checkpoint.Directory);
                jobs.AddEvent(progress.JobId, JobEventLevel.Info, $"Checkpoint created at step {checkpoint.Step}: {name}");
                break;
            case TrainingCompleted completed:
                progress.FinalDirectory = completed.FinalDirectory;
                break;
        }
    }

    /// <summary>After a restart: serve earlier results again, and put jobs that were cut off back in the queue.</summary>
    private async Task RestoreAfterRestartAsync()
    {
        foreach (StoredJob job in jobs.ListJobsWithStatus(JobStatus.Succeeded).OrderBy(j => j.FinishedAt))
        {
            if (job.FineTunedModel is null || job.OutputPath is null || engine.Models.Find(job.FineTunedModel) is not null)
            {
                continue;
            }
            try
            {
                await administration.LoadModelAsync(job.FineTunedModel, job.OutputPath, job.Lora.IsFullFineTune ? null : job.Model);
            }
            catch (Exception e) when (e is ModelAdministrationException or IOException)
            {
                logger.LogWarning("Could not serve {Model} from job {JobId} again: {Reason}", job.FineTunedModel, job.Id, e.Message);
                jobs.AddEvent(job.Id, JobEventLevel.Warn, $"After a restart the model could not be served again: {e.Message}");
            }
        }
        foreach (StoredJob job in jobs.ListJobsWithStatus(JobStatus.Running))
        {
            if (job.CancelRequested)
            {
                jobs.MarkCancelled(job.Id);
                continue;
            }
            string? checkpoint = LatestCheckpoint(job.Id);
            jobs.TryTransition(job.Id, JobStatus.Running, JobStatus.Queued, checkpoint is null
                ? "The server restarted while the job was running, before its first checkpoint; it will start again from the beginning"
                : $"The server restarted while the job was running; it will resume from checkpoint {Path.GetFileName(checkpoint)}");
        }
    }

    private string? LatestCheckpoint(string jobId) =>
        jobs.ListCheckpoints(jobId, after: null, limit: 1).Page is [{ } newest] && Directory.Exists(newest.Path) ? newest.Path : null;

    private ServedModel BaseModel(StoredJob job) => engine.Models.Resolve(job.Model) switch
    {
        null => throw new JobFailure("model_unavailable", $"The model '{job.Model}' is no longer served.", "model"),
        { Kind: ServedModelKind.Adapter } adapter => throw new JobFailure("invalid_model",
            $"'{job.Model}' is a LoRA adapter; fine-tune its base model '{adapter.Parent}' instead.", "model"),
        { } model => model,
    };

    private TrainingDataset LoadDataset(string fileId, ServedModel model)
    {
        string path = files.ContentPath(fileId);
        if (files.FindFile(fileId) is null || !File.Exists(path))
        {
            throw new JobFailure("invalid_file", $"The file {fileId} no longer exists.", fileId.Length > 0 ? "training_file" : null);
        }
        try
        {
            TrainingDataset dataset = TrainingDataset.Load(path, model.Tokenizer, model.ChatFormatter, model.MaxModelLen);
            return dataset.Examples.Count > 0 ? dataset
                : throw new JobFailure("invalid_training_file", $"The file {fileId} has no example with a token to train on.", "training_file");
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException or JsonException)
        {
            throw new JobFailure("invalid_training_file", $"The file {fileId} cannot be used for training: {e.Message}", "training_file");
        }
    }

    /// <summary>OpenAI's "auto": three epochs (more for a small file), batches of about a fiftieth of the data, multiplier 1.</summary>
    public static JobHyperparameters Resolve(JobHyperparameters requested, int exampleCount) => new(
        requested.NEpochs ?? Math.Clamp((int)Math.Ceiling(100.0 / Math.Max(1, exampleCount)), 3, 10),
        requested.BatchSize ?? Math.Clamp(exampleCount / 50, 1, 8),
        requested.LearningRateMultiplier ?? 1.0);

    private sealed class Progress(string jobId, string fineTunedModel)
    {
        public string JobId { get; } = jobId;
        public string FineTunedModel { get; } = fineTunedModel;
        public long TrainedTokens { get; set; }
        public double? LastTrainLoss { get; set; }
        public double? LastTrainAccuracy { get; set; }
        public double? ValidLoss { get; set; }
        public double? ValidAccuracy { get; set; }
        public string? FinalDirectory { get; set; }
    }

    /// <summary>OpenAI's metrics event data.</summary>
    private sealed record StepMetrics(int Step, double TrainLoss, double TrainMeanTokenAccuracy, int TotalSteps, double LearningRate, int Epoch);

    private sealed record ValidationMetrics(int Step, double ValidLoss, double? ValidMeanTokenAccuracy, double FullValidLoss, double? FullValidMeanTokenAccuracy);

    private sealed class JobFailure(string code, string message, string? param = null) : Exception(message)
    {
        public string Code { get; } = code;
        public string? Param { get; } = param;
    }
}
