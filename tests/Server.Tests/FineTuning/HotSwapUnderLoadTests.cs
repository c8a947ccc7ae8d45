using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using LlmServer.Inference.Tests;
using Xunit.Abstractions;

namespace LlmServer.Tests.FineTuning;

/// <summary>
/// The swap under load: chat requests at concurrency 8 while a job trains and finishes and
/// the default name is pointed at its result. No request may fail, and every answer must be
/// exactly what one of the two models alone answers, never a mix.
/// </summary>
public sealed class HotSwapUnderLoadTests(ITestOutputHelper output) : IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference", Model = "gpt2-random-2l-64d";
    private const int Concurrency = 8, MinimumRequests = 200, MinimumAfterSwap = 40;
    private readonly TemporaryDataDirectory _data = new("swap");

    public void Dispose() => _data.Dispose();

    [Fact]
    public async Task A_job_finishes_and_the_default_name_moves_to_its_result_without_failing_or_mixing_a_response()
    {
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model),
            "--kv-cache-memory", "64MiB", "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", _data.Path]);
        var admin = new AdminClient(server, AdminKey, InferenceKey);
        string[] prompts = KeywordTask.HeldOut(8, seed: 5).Select(p => p.Prompt).ToArray();
        var baseAnswers = new Dictionary<string, string>();
        foreach (string prompt in prompts)
        {
            baseAnswers[prompt] = (await admin.ChatAsync(null, prompt)).Content;
        }
        string baseFingerprint = (await admin.ChatAsync(null, prompts[0])).Fingerprint;

        string training = await admin.UploadAsync(KeywordTask.ChatJsonl(64, seed: 1), "train.jsonl");
        string jobId = (await admin.CreateJobAsync($$"""
            {"model":"{{Model}}","training_file":"{{training}}","method":{"type":"supervised","supervised":{"hyperparameters":
              {"n_epochs":{{FineTuningEndToEndTests.FullEpochs}},"batch_size":8,"learning_rate_multiplier":{{FineTuningEndToEndTests.FullLearningRateMultiplier}},"lora_rank":0} } } }
            """)).GetProperty("id").GetString()!;

        var responses = new ConcurrentBag<(int Index, HttpStatusCode Status, string Prompt, string Content, string? Fingerprint)>();
        int sent = 0, afterSwap = 0, duringTraining = 0;
        bool swapped = false;
        string? fineTuned = null;
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(4));

        async Task ClientAsync(int client)
        {
            while (!stop.IsCancellationRequested)
            {
                int index = Interlocked.Increment(ref sent);
                if (index > MinimumRequests && Volatile.Read(ref afterSwap) >= MinimumAfterSwap)
                {
                    return;
                }
                bool swappedBefore = Volatile.Read(ref swapped);
                string prompt = prompts[index % prompts.Length];
                (HttpStatusCode status, JsonElement body) = await admin.SendAsync(HttpMethod.Post, "/v1/chat/completions",
                    new { messages = new[] { new { role = "user", content = prompt } }, temperature = 0, max_tokens = 12 }, inference: true);
                responses.Add(status == HttpStatusCode.OK
                    ? (index, status, prompt, body.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!, body.GetProperty("system_fingerprint").GetString())
                    : (index, status, prompt, body.ToString(), null));
                if (swappedBefore)
                {
                    Interlocked.Increment(ref afterSwap);
                }
            }
        }

        Task SwapWhenTrainedAsync() => Poll.UntilAsync(async () =>
        {
            JsonElement job = await admin.GetAsync($"/v1/fine_tuning/jobs/{jobId}");
            string status = job.GetProperty("status").GetString()!;
            if (status == "running")
            {
                duringTraining = responses.Count;
            }
            if (status == "succeeded")
            {
                fineTuned = job.GetProperty("fine_tuned_model").GetString()!;
                (HttpStatusCode aliased, JsonElement body) = await admin.SendAsync(HttpMethod.Post, "/admin/aliases", new { alias = Model, model = fineTuned });
                Assert.True(aliased == HttpStatusCode.OK, body.ToString());
                Volatile.Write(ref swapped, true);
                return true;
            }
            Assert.True(status is "validating_files" or "queued" or "running", $"job ended {status}: {job}");
            return false;
        }, Timeout.InfiniteTimeSpan, "the job to succeed");

        await Task.WhenAll(Enumerable.Range(0, Concurrency).Select(ClientAsync).Append(SwapWhenTrainedAsync()));

        Assert.All(responses, r => Assert.True(r.Status == HttpStatusCode.OK, $"request {r.Index}: {(int)r.Status} {r.Content}"));
        Assert.True(responses.Count >= MinimumRequests, $"{responses.Count} requests");
        Assert.True(duringTraining > 0, "some requests were answered while the job trained");
        var fineTunedAnswers = new Dictionary<string, string>();
        foreach (string prompt in prompts)
        {
            fineTunedAnswers[prompt] = (await admin.ChatAsync(fineTuned, prompt)).Content;
        }
        string fineTunedFingerprint = (await admin.ChatAsync(fineTuned, prompts[0])).Fingerprint;
        Assert.NotEqual(baseFingerprint, fineTunedFingerprint);
        Assert.NotEqual(baseAnswers.Values, fineTunedAnswers.Values);

        // Each response names the weights that wrote it and is exactly that model's whole answer.
        foreach (var response in responses)
        {
            IReadOnlyDictionary<string, string> expected = response.Fingerprint == baseFingerprint ? baseAnswers
                : response.Fingerprint == fineTunedFingerprint ? fineTunedAnswers
                : throw new Xunit.Sdk.XunitException($"request {response.Index} came from unknown weights {response.Fingerprint}");
            Assert.Equal(expected[response.Prompt], response.Content);
        }
        output.WriteLine($"{responses.Count} requests, {responses.Count(r => r.Status != HttpStatusCode.OK)} failed; " +
            $"{responses.Count(r => r.Fingerprint == baseFingerprint)} from the base, {responses.Count(r => r.Fingerprint == fineTunedFingerprint)} from {fineTuned}; " +
            $"{duringTraining} answered by the time the job was last seen running");
        Assert.Contains(responses, r => r.Fingerprint == baseFingerprint);
        Assert.True(responses.Count(r => r.Fingerprint == fineTunedFingerprint) >= MinimumAfterSwap - Concurrency);
    }
}
