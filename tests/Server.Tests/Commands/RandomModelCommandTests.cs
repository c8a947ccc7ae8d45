using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests.Commands;

/// <summary>
/// <c>random-model</c> run as a process, as the benchmark docs run it: each architecture writes a
/// directory that serve loads, and a tokenizer that does not fit the shape is refused before anything is written.
/// </summary>
public sealed class RandomModelCommandTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);

    private readonly string _scratch = Directory.CreateTempSubdirectory("random-model-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    [Fact]
    public async Task Help_lists_every_architecture_with_its_shapes()
    {
        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout, "random-model", "--help");

        Assert.Equal(0, exitCode);
        foreach (string architecture in RandomCheckpoint.Architectures)
        {
            Assert.Contains($"{architecture}: {string.Join(", ", RandomCheckpoint.ShapeNames(architecture))}", output);
        }
    }

    [Fact]
    public async Task A_qwen3_checkpoint_it_writes_is_served()
    {
        string output = Path.Combine(_scratch, "qwen3");
        var (exitCode, log) = await LlmServerProcess.RunAsync(Timeout,
            "random-model", "--arch", "qwen3", "--shape", "tiny", "--output", output, "--tokenizer", TestFixtures.TokenizerDirectory, "--seed", "4");

        Assert.True(exitCode == 0, log);
        JsonNode config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "config.json")))!;
        Assert.Equal("Qwen3ForCausalLM", (string?)config["architectures"]![0]);
        Assert.Equal(PublishedLlamaShapes.Get("qwen3", "tiny").HeadSize, (int)config["head_dim"]!);

        await using RunningServer server = await RunningServer.StartAsync(["--model", output, "--served-model-name", "tiny-qwen3"]);
        HttpResponseMessage response = await server.Http.PostAsJsonAsync("/v1/completions", new { model = "tiny-qwen3", prompt = "Hello", max_tokens = 3, temperature = 0 });
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        JsonElement body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(3, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_tokenizer_with_more_tokens_than_the_shape_is_refused_before_anything_is_written()
    {
        string output = Path.Combine(_scratch, "smollm2");
        string llama3Tokenizer = Path.Combine(TestFixtures.FixturesDirectory, "tokenizers", "llama3");
        var (exitCode, log) = await LlmServerProcess.RunAsync(Timeout,
            "random-model", "--arch", "llama", "--shape", "360M", "--output", output, "--tokenizer", llama3Tokenizer);

        Assert.Equal(2, exitCode);
        Assert.Contains("128256 tokens", log);
        Assert.Contains("vocab_size is 49152", log);
        Assert.False(Directory.Exists(output));
    }
}
