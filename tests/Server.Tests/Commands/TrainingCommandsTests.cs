using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Xml.Linq;
using LlmServer.Inference.Tests;
using LlmServer.Training.DemoCorpus;

namespace LlmServer.Tests.Commands;

/// <summary>
/// The offline commands a user builds a model with, run as processes the way the docs show:
/// demo-corpus writes data, train pretrains a (tiny) model and its tokenizer from it, fine-tune
/// tunes a model with the jobs' trainer, and what they write is served.
/// </summary>
public sealed class TrainingCommandsTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(4);

    private readonly string _scratch = Directory.CreateTempSubdirectory("training-commands-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task Train_builds_a_tokenizer_and_a_model_from_a_chat_corpus_that_serve_loads_and_answers_with()
    {
        string data = Path.Combine(_scratch, "data");
        var (corpusExit, corpusOutput) = await LlmServerProcess.RunAsync(Timeout, "demo-corpus", "--out", data, "--examples", "400", "--validation-examples", "40", "--held-out-per-family", "5");
        Assert.True(corpusExit == 0, corpusOutput);
        Assert.Equal(400, File.ReadAllLines(Path.Combine(data, DemoCorpusGenerator.TrainingFileName)).Length);

        string output = Path.Combine(_scratch, "run");
        var (exitCode, log) = await LlmServerProcess.RunAsync(Timeout, "train",
            "--data", Path.Combine(data, DemoCorpusGenerator.TrainingFileName), "--validation-data", Path.Combine(data, DemoCorpusGenerator.ValidationFileName),
            "--vocab-size", "320", "--chat-template", Path.Combine(data, DemoCorpusGenerator.ChatTemplateFileName),
            "--layers", "2", "--width", "32", "--heads", "2", "--context", "64",
            "--steps", "12", "--batch-size", "4", "--warmup-steps", "2", "--eval-interval", "6", "--eval-tokens", "256", "--checkpoint-interval", "6",
            "--out", output);

        Assert.True(exitCode == 0, log);
        Assert.Contains("12/12", log);
        Assert.Matches(@"held-out loss \d+\.\d+, perplexity \d+\.\d+", log);
        string final = Path.Combine(output, "final");
        foreach (string file in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt", "tokenizer_config.json", "loss-curve.svg" })
        {
            Assert.True(File.Exists(Path.Combine(final, file)), $"{file} missing from {final}");
        }
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoints", "step-6")));
        Assert.Equal(320, JsonNode.Parse(File.ReadAllText(Path.Combine(final, "vocab.json")))!.AsObject().Count);
        Assert.Equal(DemoCorpusGenerator.ChatTemplate, (string?)JsonNode.Parse(File.ReadAllText(Path.Combine(final, "tokenizer_config.json")))!["chat_template"]);
        XNamespace svg = "http://www.w3.org/2000/svg";
        Assert.Equal(12, XDocument.Load(Path.Combine(final, "loss-curve.svg")).Descendants(svg + "polyline").First().Attribute("points")!.Value.Split(' ').Length);

        await using RunningServer server = await RunningServer.StartAsync(["--model", final, "--served-model-name", "tiny"]);
        HttpResponseMessage response = await server.Http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "tiny",
            messages = new[] { new { role = "user", content = "What is 1 + 2?" } },
            max_tokens = 8,
            temperature = 0,
        });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        using JsonDocument completion = JsonDocument.Parse(body);
        Assert.True(completion.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32() >= 1);

        // The same command again would mix two runs in one directory: it asks for --resume instead.
        var (againExit, again) = await LlmServerProcess.RunAsync(Timeout, "train",
            "--data", Path.Combine(data, DemoCorpusGenerator.TrainingFileName), "--vocab-size", "320", "--out", output);
        Assert.Equal(2, againExit);
        Assert.Contains("--resume", again);
    }

    [Theory]
    [InlineData("--data", "corpus.txt", "--out", "x", "exactly one of --tokenizer DIR and --vocab-size N")]
    [InlineData("--vocab-size", "300", "--data", "corpus.txt", "--out is required")]
    [InlineData("--data", "corpus.txt", "--out", "x", "--vocab-size", "300", "--steps", "many", "--steps: 'many' is not a number")]
    [InlineData("--data", "corpus.txt", "--out", "x", "--vocab-size", "300", "--colour", "red", "unknown argument '--colour'")]
    [InlineData("--data", "corpus.txt", "--out", "x", "--vocab-size", "300", "--width", "30", "--heads", "4", "n_embd 30 is not divisible by n_head 4")]
    public async Task Train_refuses_bad_flags_in_one_line_with_exit_code_2(params string[] argsAndMessage)
    {
        File.WriteAllText(Path.Combine(_scratch, "corpus.txt"), "one two three");
        string[] args = argsAndMessage[..^1].Select(a => a == "corpus.txt" ? Path.Combine(_scratch, a) : a == "x" ? Path.Combine(_scratch, "x") : a).ToArray();
        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout, ["train", .. args]);
        Assert.Equal(2, exitCode);
        Assert.Contains(argsAndMessage[^1], output);
        Assert.Single(output.Trim().Split('\n'));
    }

    [Fact]
    public async Task Fine_tune_runs_the_jobs_trainer_and_writes_a_servable_model_with_its_loss_curve()
    {
        string data = Path.Combine(_scratch, "train.jsonl");
        File.WriteAllLines(data, DemoCorpusGenerator.Training(new DemoCorpusOptions { TrainingExamples = 32 })
            .Select(e => DemoCorpusGenerator.ToJsonLine(e, withFamily: false)));
        string output = Path.Combine(_scratch, "tuned");

        var (exitCode, log) = await LlmServerProcess.RunAsync(Timeout, "fine-tune", "--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"),
            "--training-file", data, "--validation-file", data, "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--out", output);

        Assert.True(exitCode == 0, log);
        Assert.Contains("8/8", log);
        Assert.Contains("epoch 2: validation loss", log);
        string final = Path.Combine(output, "final");
        Assert.True(File.Exists(Path.Combine(final, "model.safetensors")));
        Assert.True(Directory.Exists(Path.Combine(output, "checkpoints", "step-4")));
        XNamespace svg = "http://www.w3.org/2000/svg";
        XDocument curve = XDocument.Load(Path.Combine(final, "loss-curve.svg"));
        Assert.Equal(8, curve.Descendants(svg + "polyline").First().Attribute("points")!.Value.Split(' ').Length);
        Assert.Equal(2, curve.Descendants(svg + "circle").Count());

        await using RunningServer server = await RunningServer.StartAsync(["--model", final, "--served-model-name", "tuned"]);
        HttpResponseMessage response = await server.Http.PostAsJsonAsync("/v1/completions", new { model = "tuned", prompt = "Hi", max_tokens = 2 });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Train_refuses_a_Llama_family_tokenizer_in_one_line_since_pretraining_is_GPT_2_only()
    {
        File.WriteAllText(Path.Combine(_scratch, "corpus.txt"), "one two three");
        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout, "train", "--data", Path.Combine(_scratch, "corpus.txt"),
            "--out", Path.Combine(_scratch, "x"), "--tokenizer", TestFixtures.ModelDirectory("llama3-random-2l-64d"));
        Assert.Equal(2, exitCode);
        Assert.Contains("train pretrains GPT-2 models with a GPT-2 tokenizer only", output);
        Assert.Single(output.Trim().Split('\n'));
    }

    [Fact]
    public async Task Fine_tune_trains_a_LoRA_adapter_on_a_Llama_base_with_PEFTs_target_names()
    {
        string data = Path.Combine(_scratch, "train.jsonl");
        File.WriteAllLines(data, DemoCorpusGenerator.Training(new DemoCorpusOptions { TrainingExamples = 16 })
            .Select(e => DemoCorpusGenerator.ToJsonLine(e, withFamily: false)));
        string output = Path.Combine(_scratch, "llama-lora");

        var (exitCode, log) = await LlmServerProcess.RunAsync(Timeout, "fine-tune", "--model", TestFixtures.ModelDirectory("llama3-random-2l-64d"),
            "--training-file", data, "--epochs", "1", "--batch-size", "8", "--lr", "1e-3", "--lora-rank", "4", "--out", output);

        Assert.True(exitCode == 0, log);
        Assert.Contains("LoRA rank 4", log);
        using JsonDocument config = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "final", "adapter_config.json")));
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            config.RootElement.GetProperty("target_modules").EnumerateArray().Select(t => t.GetString()));
        Assert.False(config.RootElement.GetProperty("fan_in_fan_out").GetBoolean());
    }
}
