using System.Net;
using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests.FineTuning;

/// <summary>Cancelling a job while it trains: it stops within one optimizer step and serves nothing.</summary>
public sealed class CancelRunningJobTests : IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference", Model = "gpt2-random-2l-64d";
    private readonly TemporaryDataDirectory _data = new("cancel");

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task A_running_job_stops_within_one_optimizer_step_and_its_result_is_never_served()
    {
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model),
            "--kv-cache-memory", "64MiB", "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", _data.Path]);
        var admin = new AdminClient(server, AdminKey, InferenceKey);
        string training = await admin.UploadAsync(KeywordTask.ChatJsonl(64, seed: 1), "train.jsonl");
        string id = (await admin.CreateJobAsync($$"""
            {"model":"{{Model}}","training_file":"{{training}}","hyperparameters":{"n_epochs":50,"batch_size":8} }
            """)).GetProperty("id").GetString()!;

        static int StepsIn(List<JsonElement> events) =>
            events.Count(e => e.GetProperty("message").GetString()!.StartsWith("Step ", StringComparison.Ordinal));
        await Poll.UntilAsync(async () => StepsIn(await admin.AllEventsAsync(id)) >= 3, TimeSpan.FromMinutes(2), "the job to train 3 steps");

        (HttpStatusCode status, JsonElement answer) = await admin.SendAsync(HttpMethod.Post, $"/v1/fine_tuning/jobs/{id}/cancel");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("running", answer.GetProperty("status").GetString());
        int stepsAtCancel = StepsIn(await admin.AllEventsAsync(id));

        JsonElement cancelled = await admin.WaitForJobAsync(id, TimeSpan.FromSeconds(30), "cancelled");
        List<JsonElement> events = await admin.AllEventsAsync(id);
        Assert.InRange(StepsIn(events), stepsAtCancel, stepsAtCancel + 1);
        Assert.Equal("Job cancelled", events[0].GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, cancelled.GetProperty("fine_tuned_model").ValueKind);
        Assert.DoesNotContain((await admin.GetAsync("/v1/models")).GetProperty("data").EnumerateArray(),
            m => m.GetProperty("id").GetString()!.StartsWith("ft:", StringComparison.Ordinal));

        // Cancelling it again is refused and changes nothing; the server still serves.
        (HttpStatusCode again, _) = await admin.SendAsync(HttpMethod.Post, $"/v1/fine_tuning/jobs/{id}/cancel");
        Assert.Equal(HttpStatusCode.BadRequest, again);
        Assert.Equal(StepsIn(events), StepsIn(await admin.AllEventsAsync(id)));
        Assert.False(string.IsNullOrEmpty((await admin.ChatAsync(null, "hello")).Fingerprint));
    }
}
