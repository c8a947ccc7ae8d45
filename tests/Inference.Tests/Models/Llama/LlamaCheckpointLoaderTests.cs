using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;
using TensorToWrite = LlmServer.Inference.Models.Safetensors.SafetensorsWriter.TensorToWrite;

namespace LlmServer.Inference.Tests.Models.Llama;

/// <summary>
/// Llama-family checkpoints as Hugging Face publishes them (sharded, BF16, a separate or tied head),
/// generated here from the llama3 fixture, load to the same network; configs this forward cannot
/// run exactly (other rope scalings, a sliding window that matters) fail with one line naming the file.
/// </summary>
public sealed class LlamaCheckpointLoaderTests : IDisposable
{
    private const string Fixture = "llama3-random-2l-64d";
    private static readonly long[] Probe = [128000, 9906, 11, 856, 836, 374];
    private readonly string _root = Directory.CreateTempSubdirectory("llama-loader-tests-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void The_fixture_config_reads_as_grouped_query_attention_with_llama3_rope_scaling()
    {
        LlamaConfig config = LlamaConfig.Load(Path.Combine(TestFixtures.ModelDirectory(Fixture), "config.json"));
        Assert.Equal((4, 2, 16), (config.HeadCount, config.KvHeadCount, config.HeadSize));
        Assert.Equal("llama3", config.RopeScaling!.Type);
        Assert.Equal([128001, 128009], config.EosTokenIds);

        LlamaConfig qwen3 = LlamaConfig.Load(Path.Combine(TestFixtures.ModelDirectory("qwen3-random-2l-64d"), "config.json"));
        Assert.Equal(32, qwen3.HeadSize);
        Assert.True(qwen3.QkNorm);
        Assert.Null(qwen3.RopeScaling);
    }

    [Fact]
    public void The_paged_cache_of_a_grouped_query_model_holds_only_its_key_value_heads()
    {
        LlamaConfig config = LlamaConfig.Load(Path.Combine(TestFixtures.ModelDirectory(Fixture), "config.json"));
        LlamaConfig everyHead = config with { KeyValueHeadCount = config.HeadCount };
        Assert.Equal(2 * LlmServer.Inference.Models.Attention.PagedKvCache.BytesPerBlock(config, 16, ScalarType.Float32),
            LlmServer.Inference.Models.Attention.PagedKvCache.BytesPerBlock(everyHead, 16, ScalarType.Float32));
    }

    [Fact]
    public void A_sharded_checkpoint_with_an_index_loads_the_same_weights()
    {
        string directory = CopyConfig("sharded");
        List<TensorToWrite> tensors = ReadFixtureTensors();
        var first = tensors.Where((_, i) => i % 2 == 0).ToList();
        var second = tensors.Where((_, i) => i % 2 == 1).ToList();
        SafetensorsWriter.Write(Path.Combine(directory, "model-00001-of-00002.safetensors"), first);
        SafetensorsWriter.Write(Path.Combine(directory, "model-00002-of-00002.safetensors"), second);
        var weightMap = new JsonObject();
        first.ForEach(t => weightMap[t.Name] = "model-00001-of-00002.safetensors");
        second.ForEach(t => weightMap[t.Name] = "model-00002-of-00002.safetensors");
        File.WriteAllText(Path.Combine(directory, "model.safetensors.index.json"),
            new JsonObject { ["metadata"] = new JsonObject(), ["weight_map"] = weightMap }.ToJsonString());

        AssertSameLogits(directory);
    }

    [Fact]
    public void Tie_word_embeddings_decides_whether_a_stored_lm_head_is_used()
    {
        using var scope = NewDisposeScope();
        Tensor head = torch.randn(128256, 64, generator: new Generator(7)).to(ScalarType.BFloat16);
        var storedHead = new TensorToWrite("lm_head.weight", SafetensorsDtype.BF16, [128256, 64], head.bytes.ToArray());
        string tied = WriteVariant("tied-head", tensors => tensors.Append(storedHead));
        using (LlamaModel model = LlamaCheckpointLoader.Load(tied, ScalarType.Float32, CPU))
        {
            Assert.DoesNotContain("lm_head.weight", model.state_dict().Keys);
        }
        AssertSameLogits(tied);

        string separate = WriteVariant("own-head", tensors => tensors.Append(storedHead), config => config["tie_word_embeddings"] = false);
        using LlamaModel withHead = LlamaCheckpointLoader.Load(separate, ScalarType.Float32, CPU);
        using var noGrad = torch.no_grad();
        Tensor hidden = torch.randn(3, 64, generator: new Generator(8));
        Assert.True(withHead.Logits(hidden).allclose(hidden.matmul(head.to(ScalarType.Float32).t()), rtol: 1e-5, atol: 1e-5));

        string headless = WriteVariant("untied-no-head", tensors => tensors, config => config["tie_word_embeddings"] = false);
        var error = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(headless, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(headless, "model.safetensors"), "'lm_head.weight' is missing");
    }

    [Fact]
    public void Qwen2_biases_on_q_k_and_v_load_and_are_added()
    {
        // Zero biases leave the network as it was; a bias on v_proj moves the logits.
        var zeroBiases = new List<TensorToWrite>();
        for (int layer = 0; layer < 2; layer++)
        {
            zeroBiases.Add(new TensorToWrite($"model.layers.{layer}.self_attn.q_proj.bias", SafetensorsDtype.F32, [64], new byte[64 * sizeof(float)]));
            zeroBiases.Add(new TensorToWrite($"model.layers.{layer}.self_attn.k_proj.bias", SafetensorsDtype.F32, [32], new byte[32 * sizeof(float)]));
            zeroBiases.Add(new TensorToWrite($"model.layers.{layer}.self_attn.v_proj.bias", SafetensorsDtype.F32, [32], new byte[32 * sizeof(float)]));
        }
        string qwen2 = WriteVariant("qwen2", tensors => tensors.Concat(zeroBiases), config => config["model_type"] = "qwen2");
        using (LlamaModel model = LlamaCheckpointLoader.Load(qwen2, ScalarType.Float32, CPU))
        {
            Assert.Contains("model.layers.1.self_attn.v_proj.bias", model.state_dict().Keys);
            Assert.DoesNotContain("model.layers.1.self_attn.o_proj.bias", model.state_dict().Keys);
        }
        AssertSameLogits(qwen2);

        string missing = WriteVariant("qwen2-no-bias", tensors => tensors, config => config["model_type"] = "qwen2");
        var error = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(missing, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(missing, "model.safetensors"), "q_proj.bias");

        var ones = Enumerable.Repeat(1f, 32).SelectMany(BitConverter.GetBytes).ToArray();
        string shifted = WriteVariant("qwen2-shifted", tensors => tensors.Concat(zeroBiases.Select(t =>
            t.Name == "model.layers.0.self_attn.v_proj.bias" ? t with { Data = ones } : t)), config => config["model_type"] = "qwen2");
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        using LlamaModel plain = LlamaCheckpointLoader.Load(qwen2, ScalarType.Float32, CPU);
        using LlamaModel withBias = LlamaCheckpointLoader.Load(shifted, ScalarType.Float32, CPU);
        Tensor ids = tensor(Probe).unsqueeze(0);                                          // (1, T)
        Assert.False(plain.ForwardTraining(ids).allclose(withBias.ForwardTraining(ids)), "a v_proj bias changed nothing");
    }

    [Theory]
    [InlineData("yarn")]
    [InlineData("dynamic")]
    [InlineData("longrope")]
    public void Other_rope_scalings_are_refused_naming_the_type(string type)
    {
        string variant = CopyConfig($"rope-{type}", config => config["rope_scaling"] = new JsonObject { ["rope_type"] = type, ["factor"] = 4.0 });
        var error = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "config.json"), $"unsupported rope_scaling type '{type}'");
    }

    [Fact]
    public void Linear_rope_scaling_divides_every_frequency_by_the_factor()
    {
        double[] plain = LlmServer.Inference.Models.Layers.RotaryEmbedding.DefaultInverseFrequencies(16, 10000);
        double[] linear = LlmServer.Inference.Models.Layers.RotaryEmbedding.LinearInverseFrequencies(16, 10000, 4);
        Assert.Equal(plain.Select(f => f / 4), linear);
    }

    [Fact]
    public void A_mistral_sliding_window_shorter_than_the_context_is_refused()
    {
        string variant = CopyConfig("mistral-window", config =>
        {
            config["model_type"] = "mistral";
            config["sliding_window"] = 256;
        });
        var error = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "config.json"), "sliding_window 256");

        // A window as long as the context changes nothing and loads.
        string wide = WriteVariant("mistral-wide-window", tensors => tensors, config =>
        {
            config["model_type"] = "mistral";
            config["sliding_window"] = 512;
        });
        AssertSameLogits(wide);
    }

    [Fact]
    public void A_missing_tensor_and_a_wrong_shape_are_named()
    {
        string missing = WriteVariant("missing-tensor", tensors => tensors.Where(t => t.Name != "model.norm.weight"));
        var missingError = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(missing, ScalarType.Float32, CPU));
        AssertOneLine(missingError, Path.Combine(missing, "model.safetensors"), "'model.norm.weight'");

        string shape = WriteVariant("shape", tensors => tensors, config => config["num_key_value_heads"] = 4);
        var shapeError = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(shape, ScalarType.Float32, CPU));
        AssertOneLine(shapeError, Path.Combine(shape, "model.safetensors"), "k_proj.weight");
        Assert.Contains("[32, 64]", shapeError.Message);
        Assert.Contains("[64, 64]", shapeError.Message);
    }

    [Fact]
    public void An_unsupported_model_type_names_the_supported_ones()
    {
        string variant = CopyConfig("gemma", config => config["model_type"] = "gemma");
        var error = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "config.json"), "unsupported model_type 'gemma'");
        Assert.Contains("qwen3", error.Message);
    }

    private static void AssertOneLine(CheckpointFormatException error, string path, string problem)
    {
        Assert.DoesNotContain('\n', error.Message);
        Assert.StartsWith(path, error.Message);
        Assert.Contains(problem, error.Message);
    }

    private static void AssertSameLogits(string variant)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        using LlamaModel expected = LlamaCheckpointLoader.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);
        using LlamaModel actual = LlamaCheckpointLoader.Load(variant, ScalarType.Float32, CPU);
        Tensor ids = tensor(Probe).unsqueeze(0);                                          // (1, T)
        Assert.True(expected.ForwardTraining(ids).allclose(actual.ForwardTraining(ids), rtol: 0, atol: 0), "logits differ from the fixture's");
    }

    private static List<TensorToWrite> ReadFixtureTensors()
    {
        using SafetensorsFile file = SafetensorsFile.Open(Path.Combine(TestFixtures.ModelDirectory(Fixture), "model.safetensors"));
        return file.Tensors.Values.Select(t => new TensorToWrite(t.Name, t.Dtype, t.Shape, file.GetBytes(t).ToArray())).ToList();
    }

    private string CopyConfig(string name, Action<JsonObject>? editConfig = null)
    {
        string directory = Path.Combine(_root, name);
        Directory.CreateDirectory(directory);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestFixtures.ModelDirectory(Fixture), "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString());
        return directory;
    }

    private string WriteVariant(string name, Func<IEnumerable<TensorToWrite>, IEnumerable<TensorToWrite>> transform, Action<JsonObject>? editConfig = null)
    {
        string directory = CopyConfig(name, editConfig);
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), transform(ReadFixtureTensors()).ToList());
        return directory;
    }
}
