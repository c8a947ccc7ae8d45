using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Models.Safetensors;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models;

/// <summary>A model directory loads as the architecture its config.json names; an unknown one is one line naming the supported ones.</summary>
public sealed class ModelArchitecturesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("architectures-tests-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("gpt2-random-2l-64d", typeof(Gpt2Model), "gpt2")]
    [InlineData("llama3-random-2l-64d", typeof(LlamaModel), "llama")]
    [InlineData("qwen3-random-2l-64d", typeof(LlamaModel), "qwen3")]
    public void Each_fixture_loads_as_its_architecture(string fixture, Type expected, string modelType)
    {
        using ICausalLanguageModel model = ModelArchitectures.Load(TestFixtures.ModelDirectory(fixture), ScalarType.Float32, CPU);
        Assert.IsType(expected, model);
        Assert.Equal(modelType, ModelArchitectures.ModelTypeOf(TestFixtures.ModelDirectory(fixture)));
    }

    [Theory]
    [InlineData("gpt2-random-2l-64d", ScalarType.Float32)]
    [InlineData("llama3-random-2l-64d", ScalarType.BFloat16)]
    [InlineData("qwen3-random-2l-64d", ScalarType.Float32)]
    public void A_saved_model_loads_back_as_the_same_architecture_with_the_same_outputs(string fixture, ScalarType storeAs)
    {
        string saved = Path.Combine(_root, fixture);
        using ICausalLanguageModel original = ModelArchitectures.Load(TestFixtures.ModelDirectory(fixture), ScalarType.Float32, CPU);
        CheckpointWriter.Save(original, saved, TestFixtures.ModelDirectory(fixture), storeAs);
        using ICausalLanguageModel reloaded = ModelArchitectures.Load(saved, ScalarType.Float32, CPU);

        Assert.Equal(original.Shape, reloaded.Shape);
        Assert.Equal(ModelArchitectures.ModelTypeOf(TestFixtures.ModelDirectory(fixture)), ModelArchitectures.ModelTypeOf(saved));
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        Tensor ids = tensor(new long[] { 1, 5, 42, 7, 99 }).unsqueeze(0);                           // (1, T)
        // The fixtures' weights are BF16 values, so storing them as BF16 loses nothing either.
        Assert.True(original.ForwardTraining(ids).allclose(reloaded.ForwardTraining(ids), rtol: 0, atol: 0));
    }

    [Fact]
    public void An_unsupported_architecture_is_one_line_naming_the_supported_ones()
    {
        string directory = Path.Combine(_root, "gemma");
        Directory.CreateDirectory(directory);
        string configPath = Path.Combine(directory, "config.json");
        File.WriteAllText(configPath, new JsonObject { ["model_type"] = "gemma2", ["architectures"] = new JsonArray("Gemma2ForCausalLM") }.ToJsonString());

        var error = Assert.Throws<CheckpointFormatException>(() => ModelArchitectures.Load(directory, ScalarType.Float32, CPU));
        Assert.DoesNotContain('\n', error.Message);
        Assert.StartsWith(configPath, error.Message);
        Assert.Contains("'Gemma2ForCausalLM'", error.Message);
        Assert.Contains("LlamaForCausalLM", error.Message);
        Assert.Contains("Qwen3ForCausalLM", error.Message);
        Assert.Contains("GPT2LMHeadModel", error.Message);
    }
}
