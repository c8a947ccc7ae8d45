using LlmServer.Inference.Models.Lora;
using Microsoft.Data.Sqlite;

namespace LlmServer.Storage.Tests;

/// <summary>The job store on a real SQLite database in a temporary data directory.</summary>
public sealed class JobStoreTests : IDisposable
{
    private static readonly LoraSettings Lora = new(8, 16, ["c_attn", "c_proj", "c_fc"]);

    private readonly string _dataDirectory = Path.Combine(Path.GetTempPath(), "llmserver-jobs-" + Guid.NewGuid().ToString("N"));
    private readonly JobStore _store;

    public JobStoreTests() => _store = OpenStore();

    public void Dispose()
    {
        SqliteConnection.ClearAllPools();
        Directory.Delete(_dataDirectory, recursive: true);
    }

    private JobStore OpenStore() => new(new FineTuningStore(_dataDirectory));

    private StoredJob Create(string trainingFile = "file-train", int? seed = null, JobHyperparameters? hyperparameters = null) =>
        _store.CreateJob(new NewJob("gpt2", "personal", trainingFile, null, null, seed, hyperparameters ?? JobHyperparameters.Auto, Lora, null));

    private List<string> Messages(string jobId) => [.. _store.ListEvents(jobId, null, 100).Page.Select(e => e.Message)];

    [Fact]
    public void A_new_job_is_validating_its_files_with_a_seed_and_its_creation_events()
    {
        var metadata = new Dictionary<string, string> { ["team"] = "search" };
        StoredJob job = _store.CreateJob(new NewJob("gpt2", "acme", "file-train", "file-valid", "my-model", null,
            new JobHyperparameters(3, null, 0.5), Lora, metadata));

        Assert.Matches("^ftjob-[A-Za-z0-9]{24}$", job.Id);
        Assert.Equal(JobStatus.ValidatingFiles, job.Status);
        Assert.Equal(("gpt2", "acme", "file-train", "file-valid", "my-model"), (job.Model, job.Organization, job.TrainingFile, job.ValidationFile, job.Suffix));
        Assert.Equal("supervised", job.Method);
        Assert.Equal(new JobHyperparameters(3, null, 0.5), job.Hyperparameters);
        Assert.Null(job.ResolvedHyperparameters);
        Assert.Equal(Lora.Rank, job.Lora.Rank);
        Assert.Equal(Lora.TargetModules, job.Lora.TargetModules);
        Assert.Equal(metadata, job.Metadata);
        Assert.InRange(job.Seed, 0, int.MaxValue);
        Assert.InRange(job.CreatedAt, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 5, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        Assert.Null(job.StartedAt);
        Assert.Null(job.FinishedAt);
        Assert.Null(job.FineTunedModel);
        Assert.Null(job.Error);
        Assert.False(job.CancelRequested);
        StoredJob stored = _store.GetJob(job.Id)!;
        Assert.Equal(job with { Lora = Lora, Metadata = null }, stored with { Lora = Lora, Metadata = null }); // lists compare by reference
        Assert.Equal(metadata, stored.Metadata);
        Assert.Equal([$"Validating training file: file-train and validation file: file-valid", $"Created fine-tuning job: {job.Id}"], Messages(job.Id));
    }

    [Fact]
    public void A_given_seed_is_kept_and_missing_seeds_differ()
    {
        Assert.Equal(42, Create(seed: 42).Seed);
        Assert.Equal(0, Create(seed: 0).Seed);
        int[] seeds = [.. Enumerable.Range(0, 8).Select(_ => Create().Seed)];
        Assert.True(seeds.Distinct().Count() > 1);
    }

    [Fact]
    public void Unknown_ids_find_nothing()
    {
        Assert.Null(_store.GetJob("ftjob-none"));
        Assert.False(_store.TryTransition("ftjob-none", JobStatus.ValidatingFiles, JobStatus.Queued));
        Assert.False(_store.MarkFailed("ftjob-none", "x", "y"));
        Assert.Equal(CancelOutcome.NotFound, _store.RequestCancel("ftjob-none").Outcome);
        Assert.Null(_store.RequestCancel("ftjob-none").Job);
        Assert.Null(_store.GetCheckpointByName("ft:none"));
    }

    [Fact]
    public void Jobs_list_newest_first_in_pages()
    {
        string[] ids = [.. Enumerable.Range(0, 5).Select(_ => Create().Id)];

        var first = _store.ListJobs(null, 2);
        Assert.Equal([ids[4], ids[3]], first.Page.Select(j => j.Id));
        Assert.True(first.HasMore);
        var second = _store.ListJobs(first.Page[^1].Id, 2);
        Assert.Equal([ids[2], ids[1]], second.Page.Select(j => j.Id));
        Assert.True(second.HasMore);
        var last = _store.ListJobs(second.Page[^1].Id, 2);
        Assert.Equal([ids[0]], last.Page.Select(j => j.Id));
        Assert.False(last.HasMore);
        Assert.False(_store.ListJobs(null, 5).HasMore);
    }

    [Fact]
    public void A_transition_is_a_compare_and_set_and_writes_one_event()
    {
        StoredJob job = Create();

        Assert.True(_store.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued));
        Assert.False(_store.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued)); // stale: it is queued now
        Assert.False(_store.TryTransition(job.Id, JobStatus.Running, JobStatus.Cancelled));
        Assert.Equal(JobStatus.Queued, _store.GetJob(job.Id)!.Status);

        Assert.True(_store.TryTransition(job.Id, [JobStatus.ValidatingFiles, JobStatus.Queued], JobStatus.Running));
        StoredJob running = _store.GetJob(job.Id)!;
        Assert.Equal(JobStatus.Running, running.Status);
        Assert.NotNull(running.StartedAt);
        Assert.Null(running.FinishedAt);

        Assert.Equal(["Fine-tuning job started", "Files validated, moving job to queued state", "Validating training file: file-train", $"Created fine-tuning job: {job.Id}"],
            Messages(job.Id));
    }

    [Fact]
    public void Finished_jobs_never_move_again_and_results_need_their_own_methods()
    {
        StoredJob job = Create();
        _store.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued);
        _store.TryTransition(job.Id, JobStatus.Queued, JobStatus.Running);

        Assert.True(_store.MarkSucceeded(job.Id, "ft:gpt2:personal::" + job.Id, 1234, "/data/jobs/x"));
        Assert.False(_store.MarkSucceeded(job.Id, "other", 1, "/elsewhere"));
        Assert.False(_store.MarkFailed(job.Id, "server_error", "late"));
        Assert.False(_store.MarkCancelled(job.Id));

        StoredJob done = _store.GetJob(job.Id)!;
        Assert.Equal(JobStatus.Succeeded, done.Status);
        Assert.Equal("ft:gpt2:personal::" + job.Id, done.FineTunedModel);
        Assert.Equal(1234, done.TrainedTokens);
        Assert.Equal("/data/jobs/x", done.OutputPath);
        Assert.NotNull(done.FinishedAt);
        Assert.Equal(["The job has successfully completed", $"New fine-tuned model created: ft:gpt2:personal::{job.Id}"], Messages(job.Id)[..2]);

        Assert.Throws<ArgumentException>(() => _store.TryTransition(job.Id, JobStatus.Succeeded, JobStatus.Queued));
        Assert.Throws<ArgumentException>(() => _store.TryTransition(job.Id, JobStatus.Running, JobStatus.Succeeded));
    }

    [Fact]
    public void A_failed_job_keeps_OpenAIs_error_fields_and_an_error_event()
    {
        StoredJob job = Create();

        Assert.True(_store.MarkFailed(job.Id, "invalid_training_file", "The training file has no examples.", "training_file"));

        StoredJob failed = _store.GetJob(job.Id)!;
        Assert.Equal(JobStatus.Failed, failed.Status);
        Assert.Equal(new JobError("invalid_training_file", "The training file has no examples.", "training_file"), failed.Error);
        Assert.NotNull(failed.FinishedAt);
        StoredJobEvent newest = _store.ListEvents(job.Id, null, 1).Page.Single();
        Assert.Equal(JobEventLevel.Error, newest.Level);
        Assert.Equal("Job failed: The training file has no examples.", newest.Message);
    }

    [Theory]
    [InlineData(JobStatus.ValidatingFiles)]
    [InlineData(JobStatus.Queued)]
    public void A_job_that_has_not_started_is_cancelled_at_once(JobStatus status)
    {
        StoredJob job = Create();
        if (status == JobStatus.Queued)
        {
            _store.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued);
        }

        CancelResult result = _store.RequestCancel(job.Id);

        Assert.Equal(CancelOutcome.Cancelled, result.Outcome);
        Assert.Equal(JobStatus.Cancelled, result.Job!.Status);
        Assert.NotNull(result.Job.FinishedAt);
        Assert.Equal("Job cancelled", Messages(job.Id)[0]);
        Assert.Null(_store.ClaimNextJob(JobStatus.Queued, JobStatus.Running));
    }

    [Fact]
    public void A_running_job_is_marked_for_the_worker_and_ends_cancelled_not_succeeded()
    {
        StoredJob job = Create();
        _store.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued);
        _store.TryTransition(job.Id, JobStatus.Queued, JobStatus.Running);

        CancelResult first = _store.RequestCancel(job.Id);
        CancelResult again = _store.RequestCancel(job.Id);

        Assert.Equal(CancelOutcome.CancelRequested, first.Outcome);
        Assert.Equal(JobStatus.Running, first.Job!.Status);
        Assert.True(first.Job.CancelRequested);
        Assert.Null(first.Job.FinishedAt);
        Assert.Equal(CancelOutcome.CancelRequested, again.Outcome);
        Assert.Single(Messages(job.Id), m => m.StartsWith("Cancellation requested", StringComparison.Ordinal));

        // The worker finishing just then cannot turn an accepted cancel into a success.
        Assert.False(_store.MarkSucceeded(job.Id, "ft:x", 1, "/x"));
        Assert.True(_store.MarkCancelled(job.Id));
        StoredJob cancelled = _store.GetJob(job.Id)!;
        Assert.Equal(JobStatus.Cancelled, cancelled.Status);
        Assert.Null(cancelled.FineTunedModel);
        Assert.NotNull(cancelled.FinishedAt);
    }

    [Fact]
    public void Cancelling_a_finished_job_changes_nothing()
    {
        StoredJob succeeded = Create(), failed = Create(), cancelled = Create();
        _store.TryTransition(succeeded.Id, JobStatus.ValidatingFiles, JobStatus.Running);
        _store.MarkSucceeded(succeeded.Id, "ft:done", 10, "/done");
        _store.MarkFailed(failed.Id, "server_error", "boom");
        _store.RequestCancel(cancelled.Id);

        foreach (StoredJob job in new[] { succeeded, failed, cancelled })
        {
            StoredJob before = _store.GetJob(job.Id)!;
            List<string> eventsBefore = Messages(job.Id);

            CancelResult result = _store.RequestCancel(job.Id);

            Assert.Equal(CancelOutcome.AlreadyFinished, result.Outcome);
            Assert.Equal(before.Status, result.Job!.Status);
            Assert.Equal(before.FinishedAt, result.Job.FinishedAt);
            Assert.False(result.Job.CancelRequested);
            Assert.Equal(eventsBefore, Messages(job.Id));
        }
    }

    [Fact]
    public void Claiming_takes_the_oldest_job_and_only_once()
    {
        StoredJob older = Create(), newer = Create();
        _store.TryTransition(newer.Id, JobStatus.ValidatingFiles, JobStatus.Queued);
        _store.TryTransition(older.Id, JobStatus.ValidatingFiles, JobStatus.Queued);

        StoredJob? first = _store.ClaimNextJob(JobStatus.Queued, JobStatus.Running);
        StoredJob? second = _store.ClaimNextJob(JobStatus.Queued, JobStatus.Running);

        Assert.Equal(older.Id, first?.Id);
        Assert.Equal(JobStatus.Running, first?.Status);
        Assert.Equal(newer.Id, second?.Id);
        Assert.Null(_store.ClaimNextJob(JobStatus.Queued, JobStatus.Running));
        Assert.Equal([older.Id, newer.Id], _store.ListJobsWithStatus(JobStatus.Running).Select(j => j.Id));
    }

    [Fact]
    public void Jobs_are_counted_by_status_with_every_status_present()
    {
        Assert.All(_store.CountJobsByStatus().Values, count => Assert.Equal(0, count));
        StoredJob running = Create(), failed = Create();
        Create();
        _store.TryTransition(running.Id, JobStatus.ValidatingFiles, JobStatus.Running);
        _store.MarkFailed(failed.Id, "invalid_training_file", "no examples");

        IReadOnlyDictionary<JobStatus, long> counts = _store.CountJobsByStatus();

        Assert.Equal(Enum.GetValues<JobStatus>().Length, counts.Count);
        Assert.Equal(1, counts[JobStatus.ValidatingFiles]);
        Assert.Equal(1, counts[JobStatus.Running]);
        Assert.Equal(1, counts[JobStatus.Failed]);
        Assert.Equal(0, counts[JobStatus.Succeeded]);
    }

    [Fact]
    public async Task Racing_workers_claim_each_job_exactly_once()
    {
        string[] ids = [.. Enumerable.Range(0, 6).Select(_ => Create().Id)];
        foreach (string id in ids)
        {
            _store.TryTransition(id, JobStatus.ValidatingFiles, JobStatus.Queued);
        }

        List<string>[] claims = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() =>
        {
            var mine = new List<string>();
            while (_store.ClaimNextJob(JobStatus.Queued, JobStatus.Running) is { } job)
            {
                mine.Add(job.Id);
            }
            return mine;
        })));

        Assert.Equal(ids.Order(), claims.SelectMany(c => c).Order());
    }

    [Fact]
    public async Task A_cancel_racing_the_worker_is_never_lost()
    {
        for (int round = 0; round < 20; round++)
        {
            StoredJob job = Create();
            _store.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued);

            Task<CancelResult> cancel = Task.Run(() => _store.RequestCancel(job.Id));
            Task<bool> start = Task.Run(() => _store.TryTransition(job.Id, JobStatus.Queued, JobStatus.Running));
            (CancelResult cancelled, bool started) = (await cancel, await start);

            StoredJob after = _store.GetJob(job.Id)!;
            if (started)
            {
                Assert.Equal(CancelOutcome.CancelRequested, cancelled.Outcome);
                Assert.Equal((JobStatus.Running, true), (after.Status, after.CancelRequested));
            }
            else
            {
                Assert.Equal(CancelOutcome.Cancelled, cancelled.Outcome);
                Assert.Equal(JobStatus.Cancelled, after.Status);
            }
        }
    }

    [Fact]
    public void Events_list_newest_first_in_pages_with_their_data()
    {
        StoredJob job = Create();
        StoredJobEvent metrics = _store.AddEvent(job.Id, JobEventLevel.Info, "Step 1/10: training loss=2.5", JobEventType.Metrics,
            """{"step":1,"train_loss":2.5,"total_steps":10}""");
        StoredJobEvent warning = _store.AddEvent(job.Id, JobEventLevel.Warn, "3 examples are longer than the context and were truncated");

        var first = _store.ListEvents(job.Id, null, 2);
        Assert.Equal([warning.Id, metrics.Id], first.Page.Select(e => e.Id));
        Assert.True(first.HasMore);
        Assert.Equal(JobEventLevel.Warn, first.Page[0].Level);
        Assert.Equal(JobEventType.Metrics, first.Page[1].Type);
        Assert.Equal("""{"step":1,"train_loss":2.5,"total_steps":10}""", first.Page[1].DataJson);
        Assert.Matches("^ftevent-[A-Za-z0-9]{24}$", metrics.Id);

        var rest = _store.ListEvents(job.Id, first.Page[^1].Id, 10);
        Assert.Equal(["Validating training file: file-train", $"Created fine-tuning job: {job.Id}"], rest.Page.Select(e => e.Message));
        Assert.False(rest.HasMore);
        Assert.Empty(_store.ListEvents(Create().Id, metrics.Id, 10).Page); // another job's event id is no cursor here
    }

    [Fact]
    public void Events_need_an_existing_job_and_object_data()
    {
        StoredJob job = Create();
        Assert.Throws<ArgumentException>(() => _store.AddEvent(job.Id, JobEventLevel.Info, "x", JobEventType.Metrics, "[1,2]"));
        Assert.Throws<SqliteException>(() => _store.AddEvent("ftjob-none", JobEventLevel.Info, "x"));
    }

    [Fact]
    public void Checkpoints_list_highest_step_first_and_are_found_by_name()
    {
        StoredJob job = Create();
        foreach (int step in new[] { 10, 20, 30 })
        {
            _store.AddCheckpoint(job.Id, step, new CheckpointMetrics(step, TrainLoss: 3.0 - step / 10.0), $"ft:gpt2:personal::{job.Id}:ckpt-step-{step}", $"/ckpt/{step}");
        }

        var first = _store.ListCheckpoints(job.Id, null, 2);
        Assert.Equal([30, 20], first.Page.Select(c => c.StepNumber));
        Assert.True(first.HasMore);
        var rest = _store.ListCheckpoints(job.Id, first.Page[^1].Id, 2);
        Assert.Equal([10], rest.Page.Select(c => c.StepNumber));
        Assert.False(rest.HasMore);
        Assert.Empty(_store.ListCheckpoints(Create().Id, null, 10).Page);

        StoredCheckpoint found = _store.GetCheckpointByName($"ft:gpt2:personal::{job.Id}:ckpt-step-20")!;
        Assert.Matches("^ftckpt_[A-Za-z0-9]{24}$", found.Id);
        Assert.Equal((job.Id, 20, "/ckpt/20"), (found.JobId, found.StepNumber, found.Path));
        Assert.Equal(new CheckpointMetrics(20, TrainLoss: 1.0), found.Metrics);
    }

    [Fact]
    public void A_step_written_again_replaces_its_checkpoint()
    {
        StoredJob job = Create();
        StoredCheckpoint original = _store.AddCheckpoint(job.Id, 5, new CheckpointMetrics(5, TrainLoss: 2), "ft:a:ckpt-step-5", "/old");

        StoredCheckpoint again = _store.AddCheckpoint(job.Id, 5, new CheckpointMetrics(5, TrainLoss: 1, ValidLoss: 1.5), "ft:a:ckpt-step-5", "/new");

        Assert.Equal(original.Id, again.Id);
        Assert.Equal(new CheckpointMetrics(5, TrainLoss: 1, ValidLoss: 1.5), again.Metrics);
        Assert.Equal("/new", _store.ListCheckpoints(job.Id, null, 10).Page.Single().Path);
    }

    [Fact]
    public void Resolved_hyperparameters_must_be_resolved()
    {
        StoredJob job = Create(hyperparameters: new JobHyperparameters(null, 4, null));

        Assert.Throws<ArgumentException>(() => _store.SetResolvedHyperparameters(job.Id, new JobHyperparameters(3, null, 1.0)));
        Assert.True(_store.SetResolvedHyperparameters(job.Id, new JobHyperparameters(3, 4, 1.0)));
        Assert.True(_store.SetTrainedTokens(job.Id, 999));

        StoredJob stored = _store.GetJob(job.Id)!;
        Assert.Equal(new JobHyperparameters(null, 4, null), stored.Hyperparameters);
        Assert.Equal(new JobHyperparameters(3, 4, 1.0), stored.ResolvedHyperparameters);
        Assert.Equal(999, stored.TrainedTokens);
    }

    [Fact]
    public void Everything_is_there_again_for_a_new_store_on_the_same_directory()
    {
        StoredJob job = Create(seed: 7);
        _store.TryTransition(job.Id, JobStatus.ValidatingFiles, JobStatus.Queued);
        _store.TryTransition(job.Id, JobStatus.Queued, JobStatus.Running);
        _store.SetResolvedHyperparameters(job.Id, new JobHyperparameters(2, 1, 1.0));
        _store.AddCheckpoint(job.Id, 3, new CheckpointMetrics(3, TrainLoss: 0.5), "ft:gpt2:personal::" + job.Id + ":ckpt-step-3", "/ckpt/3");
        _store.RequestCancel(job.Id);
        StoredJob before = _store.GetJob(job.Id)!;
        List<string> events = Messages(job.Id);
        SqliteConnection.ClearAllPools();

        JobStore reopened = OpenStore();

        StoredJob after = reopened.GetJob(job.Id)!;
        Assert.Equal(before with { Lora = after.Lora }, after);
        Assert.Equal(before.Lora.TargetModules, after.Lora.TargetModules);
        Assert.Equal([job.Id], reopened.ListJobsWithStatus(JobStatus.Running).Select(j => j.Id));
        Assert.True(after.CancelRequested);
        Assert.Equal(events, reopened.ListEvents(job.Id, null, 100).Page.Select(e => e.Message));
        Assert.Equal("/ckpt/3", reopened.GetCheckpointByName("ft:gpt2:personal::" + job.Id + ":ckpt-step-3")?.Path);
    }

    [Fact]
    public void A_jobs_lora_settings_are_stored_as_their_fields_alone_and_rows_written_that_way_load()
    {
        StoredJob lora = Create();
        StoredJob full = _store.CreateJob(new NewJob("gpt2", "personal", "file-train", null, null, null, JobHyperparameters.Auto,
            new LoraSettings(0, 0, []), null));

        Assert.Equal("""{"rank":8,"alpha":16,"target_modules":["c_attn","c_proj","c_fc"]}""", StoredLoraJson(lora.Id));
        Assert.Equal("""{"rank":0,"alpha":0,"target_modules":[]}""", StoredLoraJson(full.Id));
        Assert.False(_store.GetJob(lora.Id)!.Lora.IsFullFineTune);
        StoredJob reloaded = _store.GetJob(full.Id)!;
        Assert.True(reloaded.Lora.IsFullFineTune);
        Assert.False(reloaded.Lora.UseRsLora);
    }

    private string StoredLoraJson(string jobId)
    {
        using var connection = new SqliteConnection($"Data Source={Path.Combine(_dataDirectory, FineTuningStore.DatabaseFileName)}");
        connection.Open();
        using SqliteCommand query = connection.CreateCommand();
        query.CommandText = "SELECT lora FROM jobs WHERE id = $id";
        query.Parameters.AddWithValue("$id", jobId);
        return (string)query.ExecuteScalar()!;
    }
}
