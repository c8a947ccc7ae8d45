using System.ClientModel;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Tests;
using OpenAI;
using OpenAI.Files;
using OpenAI.FineTuning;
using Xunit.Abstractions;

namespace LlmServer.Tests.FineTuning;

/// <summary>
/// Fine-tuning from upload to serving on the fixture model: a LoRA job through the official
/// OpenAI SDK and a full fine-tune through raw HTTP each teach it a rule it does not know, and
/// the result answers held-out prompts by its ft: name as soon as the job reads succeeded.
/// </summary>
public sealed class FineTuningEndToEndTests(ITestOutputHelper output) : IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference", Model = "gpt2-random-2l-64d";
    private static readonly IReadOnlyList<(string Prompt, string Answer)> HeldOut = KeywordTask.HeldOut(20, seed: 99);
    private readonly TemporaryDataDirectory _data = new("e2e");

    public void Dispose() => _data.Dispose();

    private Task<RunningServer> StartAsync() =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB",
            "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", _data.Path]);

#pragma warning disable OPENAI001 // the SDK marks its fine-tuning client experimental
    [Fact]
    public async Task A_LoRA_job_started_through_the_OpenAI_SDK_teaches_the_model_and_is_served_by_its_ft_name()
    {
        await using RunningServer server = await StartAsync();
        var admin = new AdminClient(server, AdminKey, InferenceKey);
        (double before, _) = await admin.AccuracyAsync(Model, HeldOut);
        Assert.True(before <= 0.1, $"the untrained model already answers {before:P0}");

        var client = new OpenAIClient(new ApiKeyCredential(AdminKey), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        OpenAIFileClient files = client.GetOpenAIFileClient();
        OpenAIFile training = await files.UploadFileAsync(new MemoryStream(Encoding.UTF8.GetBytes(KeywordTask.ChatJsonl(TrainingExamples, seed: 1))), "train.jsonl", FileUploadPurpose.FineTune);
        OpenAIFile validation = await files.UploadFileAsync(new MemoryStream(Encoding.UTF8.GetBytes(KeywordTask.ChatJsonl(16, seed: 2))), "valid.jsonl", FileUploadPurpose.FineTune);
        FineTuningClient fineTuning = client.GetFineTuningClient();

        // No LoRA settings given: the default is a rank-8 adapter on c_attn, c_proj and c_fc.
        FineTuningJob job = await fineTuning.FineTuneAsync(Model, training.Id, waitUntilCompleted: false, new FineTuningOptions
        {
            Suffix = "animals",
            Seed = 3,
            ValidationFile = validation.Id,
            TrainingMethod = FineTuningTrainingMethod.CreateSupervised(HyperparameterBatchSize.CreateSize(8),
                HyperparameterEpochCount.CreateEpochCount(LoraEpochs), HyperparameterLearningRate.CreateMultiplier(LoraLearningRateMultiplier)),
        });
        job = await AdminClient.WaitForSdkJobAsync(fineTuning, job, TimeSpan.FromMinutes(3));
        // The SDK's job object has no property for the result's name (nor the error): read it from the response.
        using JsonDocument raw = JsonDocument.Parse(job.GetRawResponse().Content);
        Assert.True(job.Status == FineTuningStatus.Succeeded, $"job ended {job.Status}: {raw.RootElement.GetProperty("error")}");
        string name = raw.RootElement.GetProperty("fine_tuned_model").GetString()!;
        Assert.Equal($"ft:{Model}:personal:animals:{job.JobId}", name);
        Assert.True(raw.RootElement.GetProperty("trained_tokens").GetInt64() > 0, raw.RootElement.ToString());

        // Events: status messages and one metrics event per optimizer step, newest first.
        List<FineTuningEvent> events = await job.GetEventsAsync(new GetEventsOptions { PageSize = 7 }).ToListAsync();
        Assert.Contains(events, e => e.Message == "Fine-tuning job started");
        Assert.Contains(events, e => e.Message == $"New fine-tuned model created: {name}");
        List<FineTuningEvent> steps = events.Where(e => e.Message.StartsWith("Step ", StringComparison.Ordinal)).ToList();
        Assert.Equal(LoraEpochs * StepsPerEpoch, steps.Count);
        Assert.All(steps, e => Assert.Contains("\"train_loss\"", e.Data.ToString()));
        Assert.Contains(events, e => e.Message.StartsWith("Epoch 1: validation loss=", StringComparison.Ordinal));

        // One checkpoint per epoch, each selectable by name.
        List<FineTuningCheckpoint> checkpoints = await job.GetCheckpointsAsync(new GetCheckpointsOptions()).ToListAsync();
        Assert.Equal(Enumerable.Range(1, LoraEpochs).Select(e => e * StepsPerEpoch).Reverse(), checkpoints.Select(c => c.StepNumber));
        Assert.All(checkpoints, c => Assert.Equal($"{name}:ckpt-step-{c.StepNumber}", c.ModelId));
        Assert.All(checkpoints, c => Assert.NotNull(c.Metrics.TrainLoss));
        Assert.True(checkpoints[0].Metrics.ValidLoss < checkpoints[^1].Metrics.ValidLoss, "validation loss falls across epochs");

        // Served at once, as an adapter on the shared base, and it learned the rule.
        Assert.Contains(name, (await client.GetOpenAIModelClient().GetModelsAsync()).Value.Select(m => m.Id));
        JsonElement models = await admin.GetAsync("/v1/models");
        JsonElement card = models.GetProperty("data").EnumerateArray().Single(m => m.GetProperty("id").GetString() == name);
        Assert.Equal(Model, card.GetProperty("parent").GetString());
        (double after, string wrong) = await admin.AccuracyAsync(name, HeldOut);
        output.WriteLine($"LoRA: held-out accuracy {before:P0} -> {after:P0}; last step: {steps[0].Message}");
        Assert.True(after >= 0.9, $"held-out accuracy after LoRA: {after:P0} ({steps[0].Message}); {wrong}");
        Assert.Equal(before, (await admin.AccuracyAsync(Model, HeldOut)).Accuracy);

        // The result is a PEFT adapter directory that other tools can load.
        string adapter = Path.Combine(_data.Path, "models", job.JobId, "final");
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")));
        Assert.Equal("LORA", config.RootElement.GetProperty("peft_type").GetString());
        Assert.Equal(8, config.RootElement.GetProperty("r").GetInt32());
        using var weights = SafetensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors"));
        Assert.Contains("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", weights.Tensors.Keys);

        // A checkpoint can be put behind an alias and answers from its own weights.
        (System.Net.HttpStatusCode aliased, JsonElement alias) = await admin.SendAsync(HttpMethod.Post, "/admin/aliases",
            new { alias = "animals-first-epoch", model = checkpoints[^1].ModelId });
        Assert.Equal(System.Net.HttpStatusCode.OK, aliased);
        Assert.Equal(checkpoints[^1].ModelId, alias.GetProperty("model").GetString());
        Assert.NotEqual((await admin.ChatAsync(name, HeldOut[0].Prompt)).Fingerprint, (await admin.ChatAsync("animals-first-epoch", HeldOut[0].Prompt)).Fingerprint);
    }
#pragma warning restore OPENAI001

    [Fact]
    public async Task A_full_fine_tune_teaches_the_model_and_is_saved_as_a_Hugging_Face_model_directory()
    {
        await using RunningServer server = await StartAsync();
        var admin = new AdminClient(server, AdminKey, InferenceKey);
        string training = await admin.UploadAsync(KeywordTask.ChatJsonl(TrainingExamples, seed: 1), "train.jsonl");

        JsonElement created = await admin.CreateJobAsync($$"""
            {"model":"{{Model}}","training_file":"{{training}}","suffix":"full","seed":5,
             "method":{"type":"supervised","supervised":{"hyperparameters":
               {"n_epochs":{{FullEpochs}},"batch_size":8,"learning_rate_multiplier":{{FullLearningRateMultiplier}},"lora_rank":0} } } }
            """);
        string id = created.GetProperty("id").GetString()!;
        JsonElement job = await admin.WaitForJobAsync(id, TimeSpan.FromMinutes(3), "succeeded");
        string name = job.GetProperty("fine_tuned_model").GetString()!;
        Assert.Equal(0, job.GetProperty("hyperparameters").GetProperty("lora_rank").GetInt32());

        (double after, string wrong) = await admin.AccuracyAsync(name, HeldOut);
        string lastLoss = (await admin.AllEventsAsync(id)).Select(e => e.GetProperty("message").GetString()!).First(m => m.StartsWith("Step ", StringComparison.Ordinal));
        output.WriteLine($"Full fine-tune: held-out accuracy {(await admin.AccuracyAsync(Model, HeldOut)).Accuracy:P0} -> {after:P0}; last step: {lastLoss}");
        Assert.True(after >= 0.9, $"held-out accuracy after the full fine-tune: {after:P0} ({lastLoss}); {wrong}");
        JsonElement card = (await admin.GetAsync("/v1/models")).GetProperty("data").EnumerateArray().Single(m => m.GetProperty("id").GetString() == name);
        Assert.False(card.TryGetProperty("parent", out JsonElement parent) && parent.ValueKind != JsonValueKind.Null, "a full model has no parent");

        string directory = Path.Combine(_data.Path, "models", id, "final");
        foreach (string file in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt" })
        {
            Assert.True(File.Exists(Path.Combine(directory, file)), $"{file} in the full fine-tune's directory");
        }
        JsonElement checkpoints = await admin.GetAsync($"/v1/fine_tuning/jobs/{id}/checkpoints");
        Assert.Equal(FullEpochs, checkpoints.GetProperty("data").GetArrayLength());
    }

    // What the keyword task needs on the fixture model (measured: see the closing note of issue 4).
    internal const int LoraEpochs = 6, FullEpochs = 4, TrainingExamples = 256, StepsPerEpoch = TrainingExamples / 8;
    internal const double LoraLearningRateMultiplier = 20, FullLearningRateMultiplier = 30;
}
