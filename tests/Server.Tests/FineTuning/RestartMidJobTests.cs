using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests.FineTuning;

/// <summary>
/// A server stopped in the middle of a job and started again on the same data directory: files,
/// jobs and events are all there, the job resumes from its last checkpoint and completes, and
/// its result is served again after a further restart.
/// </summary>
public sealed class RestartMidJobTests : IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference", Model = "gpt2-random-2l-64d";
    private const int Epochs = 12;
    private readonly TemporaryDataDirectory _data = new("restart");

    public void Dispose() => _data.Dispose();

    private Task<RunningServer> StartAsync() =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB",
            "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", _data.Path]);

    private static string[] Ids(JsonElement list) => list.GetProperty("data").EnumerateArray().Select(e => e.GetProperty("id").GetString()!).ToArray();

    [Fact]
    public async Task A_job_cut_off_by_a_restart_resumes_from_its_checkpoint_and_completes()
    {
        string jobId, fileId;
        string[] eventsBefore;
        int checkpointStep;
        await using (RunningServer first = await StartAsync())
        {
            var admin = new AdminClient(first, AdminKey, InferenceKey);
            fileId = await admin.UploadAsync(KeywordTask.ChatJsonl(64, seed: 1), "train.jsonl");
            jobId = (await admin.CreateJobAsync($$"""
                {"model":"{{Model}}","training_file":"{{fileId}}","hyperparameters":{"n_epochs":{{Epochs}},"batch_size":8,"learning_rate_multiplier":2} }
                """)).GetProperty("id").GetString()!;

            // Stop as soon as the first checkpoint is recorded, well before the last epoch.
            JsonElement checkpoints = default;
            await Poll.UntilAsync(async () => (checkpoints = await admin.GetAsync($"/v1/fine_tuning/jobs/{jobId}/checkpoints")).GetProperty("data").GetArrayLength() > 0,
                TimeSpan.FromMinutes(2), "a checkpoint");
            checkpointStep = checkpoints.GetProperty("data")[0].GetProperty("step_number").GetInt32();
            eventsBefore = (await admin.AllEventsAsync(jobId)).Select(e => e.GetProperty("id").GetString()!).ToArray();
        }

        await using (RunningServer second = await StartAsync())
        {
            var admin = new AdminClient(second, AdminKey, InferenceKey);
            Assert.Equal([fileId], Ids(await admin.GetAsync("/v1/files")));
            Assert.Equal([jobId], Ids(await admin.GetAsync("/v1/fine_tuning/jobs")));

            JsonElement job = await admin.WaitForJobAsync(jobId, TimeSpan.FromMinutes(3), "succeeded");
            List<JsonElement> events = await admin.AllEventsAsync(jobId);
            string[] messages = events.Select(e => e.GetProperty("message").GetString()!).ToArray();
            Assert.Contains(messages, m => m.StartsWith("The server restarted while the job was running; it will resume from checkpoint", StringComparison.Ordinal));
            Assert.Contains(messages, m => m.StartsWith("Resuming from checkpoint", StringComparison.Ordinal));
            // Nothing recorded before the restart was lost.
            Assert.Subset(events.Select(e => e.GetProperty("id").GetString()!).ToHashSet(), eventsBefore.ToHashSet());
            // The resumed run went on from its checkpoint: the steps up to it ran once, not again.
            Assert.All(Enumerable.Range(1, checkpointStep), step =>
                Assert.Single(messages, m => m.StartsWith($"Step {step}/", StringComparison.Ordinal)));
            JsonElement checkpoints = await admin.GetAsync($"/v1/fine_tuning/jobs/{jobId}/checkpoints?limit=100");
            Assert.Equal(Epochs, checkpoints.GetProperty("data").GetArrayLength());
            Assert.Contains(job.GetProperty("fine_tuned_model").GetString(), Ids(await admin.GetAsync("/v1/models")));
        }

        // And once more: the finished job's model is served again after a restart.
        await using RunningServer third = await StartAsync();
        var again = new AdminClient(third, AdminKey, InferenceKey);
        JsonElement finished = await again.GetAsync($"/v1/fine_tuning/jobs/{jobId}");
        Assert.Equal("succeeded", finished.GetProperty("status").GetString());
        string name = finished.GetProperty("fine_tuned_model").GetString()!;
        Assert.Contains(name, Ids(await again.GetAsync("/v1/models")));
        Assert.False(string.IsNullOrEmpty((await again.ChatAsync(name, "the cat")).Fingerprint));
    }
}
