using System.ClientModel;
using System.Net;
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
/// Fine-tuning jobs on Llama-family bases: a LoRA job on the llama3 fixture through the official
/// OpenAI SDK, served by its ft: name beside the base and loadable through the admin API as the PEFT
/// directory it is; a full fine-tune of the qwen3 fixture that the base's name is then pointed at.
/// </summary>
public sealed class LlamaFineTuningTests(ITestOutputHelper output) : IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference";
    private const string Llama = "llama3-random-2l-64d", Qwen = "qwen3-random-2l-64d";
    private const int Examples = 64, Epochs = 3, StepsPerEpoch = Examples / 8;
    private static readonly string[] LlamaProjections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    private readonly TemporaryDataDirectory _data = new("llama-ft");

    public void Dispose() => _data.Dispose();

    private Task<RunningServer> StartAsync(string model) =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(model), "--kv-cache-memory", "64MiB",
            "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", _data.Path]);

#pragma warning disable OPENAI001 // the SDK marks its fine-tuning client experimental
    [Fact]
    public async Task A_LoRA_job_on_a_Llama_base_through_the_OpenAI_SDK_is_served_by_its_ft_name_in_a_batch_with_the_base()
    {
        await using RunningServer server = await StartAsync(Llama);
        var admin = new AdminClient(server, AdminKey, InferenceKey);
        string[] prompts = KeywordTask.HeldOut(6, seed: 5).Select(p => p.Prompt).ToArray();
        var baseAnswers = new Dictionary<string, string>();
        foreach (string prompt in prompts)
        {
            baseAnswers[prompt] = (await admin.ChatAsync(null, prompt)).Content;
        }

        var client = new OpenAIClient(new ApiKeyCredential(AdminKey), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") });
        OpenAIFile training = await client.GetOpenAIFileClient().UploadFileAsync(
            new MemoryStream(Encoding.UTF8.GetBytes(KeywordTask.ChatJsonl(Examples, seed: 1))), "train.jsonl", FileUploadPurpose.FineTune);
        FineTuningClient fineTuning = client.GetFineTuningClient();
        // No LoRA settings: the default adapts every projection of a Llama layer.
        FineTuningJob job = await fineTuning.FineTuneAsync(Llama, training.Id, waitUntilCompleted: false, new FineTuningOptions
        {
            Suffix = "llama",
            Seed = 3,
            TrainingMethod = FineTuningTrainingMethod.CreateSupervised(HyperparameterBatchSize.CreateSize(8),
                HyperparameterEpochCount.CreateEpochCount(Epochs), HyperparameterLearningRate.CreateMultiplier(20)),
        });
        job = await AdminClient.WaitForSdkJobAsync(fineTuning, job, TimeSpan.FromMinutes(3));
        using JsonDocument raw = JsonDocument.Parse(job.GetRawResponse().Content);
        Assert.True(job.Status == FineTuningStatus.Succeeded, $"job ended {job.Status}: {raw.RootElement.GetProperty("error")}");
        string name = raw.RootElement.GetProperty("fine_tuned_model").GetString()!;
        Assert.Equal($"ft:{Llama}:personal:llama:{job.JobId}", name);
        JsonElement hyperparameters = raw.RootElement.GetProperty("method").GetProperty("supervised").GetProperty("hyperparameters");
        Assert.Equal(LlamaProjections, hyperparameters.GetProperty("lora_target_modules").EnumerateArray().Select(m => m.GetString()));

        // The loss falls: the last step's is well under the first's.
        List<double> losses = (await admin.AllEventsAsync(job.JobId))
            .Where(e => e.GetProperty("message").GetString()!.StartsWith("Step ", StringComparison.Ordinal))
            .Select(e => e.GetProperty("data").GetProperty("train_loss").GetDouble()).Reverse().ToList();
        output.WriteLine($"LoRA on {Llama}: train loss {losses[0]:F3} -> {losses[^1]:F3} over {losses.Count} steps");
        Assert.Equal(Epochs * StepsPerEpoch, losses.Count);
        Assert.True(losses[^1] < losses[0] / 2, $"train loss went from {losses[0]} to {losses[^1]}");

        // The adapter is a PEFT directory with PEFT's Llama keys.
        string adapter = Path.Combine(_data.Path, "models", job.JobId, "final");
        using (var weights = SafetensorsFile.Open(Path.Combine(adapter, "adapter_model.safetensors")))
        {
            Assert.Contains("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", weights.Tensors.Keys);
            Assert.Equal(2 * LlamaProjections.Length * 2, weights.Tensors.Count);
        }

        // Served by its ft: name as an adapter on the base; alone, each gives its own answers.
        JsonElement card = (await admin.GetAsync("/v1/models")).GetProperty("data").EnumerateArray().Single(m => m.GetProperty("id").GetString() == name);
        Assert.Equal(Llama, card.GetProperty("parent").GetString());
        var tunedAnswers = new Dictionary<string, string>();
        foreach (string prompt in prompts)
        {
            tunedAnswers[prompt] = (await admin.ChatAsync(name, prompt)).Content;
        }
        Assert.NotEqual(baseAnswers.Values, tunedAnswers.Values);

        // Together, base and adapter requests share the engine's steps: each still gets its own answer.
        (string Model, string Prompt, string Content)[] together = await Task.WhenAll(Enumerable.Range(0, 12).Select(async i =>
        {
            string? model = i % 2 == 0 ? null : name;
            string prompt = prompts[i % prompts.Length];
            return (model ?? "", prompt, (await admin.ChatAsync(model, prompt)).Content);
        }));
        foreach ((string model, string prompt, string content) in together)
        {
            Assert.Equal(model.Length == 0 ? baseAnswers[prompt] : tunedAnswers[prompt], content);
        }

        // The same directory loads through the admin API under another name and answers the same.
        (HttpStatusCode loaded, JsonElement loadedCard) = await admin.SendAsync(HttpMethod.Post, "/admin/models/load", new { path = adapter, name = "peft-copy", @base = Llama });
        Assert.True(loaded == HttpStatusCode.OK, loadedCard.ToString());
        Assert.Equal(tunedAnswers[prompts[0]], (await admin.ChatAsync("peft-copy", prompts[0])).Content);

        // Hot-swap: the base's name now points at the adapter, and answers as it does.
        (HttpStatusCode aliased, JsonElement alias) = await admin.SendAsync(HttpMethod.Post, "/admin/aliases", new { alias = Llama, model = name });
        Assert.True(aliased == HttpStatusCode.OK, alias.ToString());
        Assert.Equal(tunedAnswers[prompts[1]], (await admin.ChatAsync(Llama, prompts[1])).Content);
    }
#pragma warning restore OPENAI001

    [Fact]
    public async Task A_full_fine_tune_of_a_Qwen3_base_is_saved_as_a_Qwen3_directory_and_the_base_name_can_point_at_it()
    {
        await using RunningServer server = await StartAsync(Qwen);
        var admin = new AdminClient(server, AdminKey, InferenceKey);
        string prompt = KeywordTask.HeldOut(1, seed: 5)[0].Prompt;
        (string baseAnswer, string baseFingerprint) = await admin.ChatAsync(null, prompt);
        string training = await admin.UploadAsync(KeywordTask.ChatJsonl(16, seed: 1), "train.jsonl");

        string id = (await admin.CreateJobAsync($$"""
            {"model":"{{Qwen}}","training_file":"{{training}}","suffix":"full","seed":5,
             "method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":2,"batch_size":8,"learning_rate_multiplier":30,"lora_rank":0} } } }
            """)).GetProperty("id").GetString()!;
        JsonElement job = await admin.WaitForJobAsync(id, TimeSpan.FromMinutes(3), "succeeded");
        string name = job.GetProperty("fine_tuned_model").GetString()!;

        string directory = Path.Combine(_data.Path, "models", id, "final");
        using (JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "config.json"))))
        {
            Assert.Equal("Qwen3ForCausalLM", config.RootElement.GetProperty("architectures")[0].GetString());
        }
        foreach (string file in new[] { "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
        {
            Assert.True(File.Exists(Path.Combine(directory, file)), $"{file} in the full fine-tune's directory");
        }

        (string tunedAnswer, string tunedFingerprint) = await admin.ChatAsync(name, prompt);
        Assert.NotEqual(baseFingerprint, tunedFingerprint);
        (HttpStatusCode aliased, JsonElement alias) = await admin.SendAsync(HttpMethod.Post, "/admin/aliases", new { alias = Qwen, model = name });
        Assert.True(aliased == HttpStatusCode.OK, alias.ToString());
        Assert.Equal((tunedAnswer, tunedFingerprint), await admin.ChatAsync(null, prompt));
        output.WriteLine($"{Qwen} full fine-tune: '{baseAnswer}' -> '{tunedAnswer}'");
    }

    [Fact]
    public async Task GPT_2_target_modules_on_a_Llama_base_are_refused_naming_the_architecture()
    {
        await using RunningServer server = await StartAsync(Llama);
        var admin = new AdminClient(server, AdminKey, InferenceKey);
        string training = await admin.UploadAsync(KeywordTask.ChatJsonl(8, seed: 1), "train.jsonl");

        (HttpStatusCode status, JsonElement body) = await admin.SendAsync(HttpMethod.Post, "/v1/fine_tuning/jobs",
            $$"""{"model":"{{Llama}}","training_file":"{{training}}","hyperparameters":{"lora_target_modules":["c_attn"]} }""");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        JsonElement error = body.GetProperty("error");
        Assert.Equal("hyperparameters.lora_target_modules", error.GetProperty("param").GetString());
        Assert.Contains("LlamaForCausalLM", error.GetProperty("message").GetString());
        Assert.Contains("q_proj", error.GetProperty("message").GetString());
    }
}
