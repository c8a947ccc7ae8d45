using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;
using static LlmServer.Inference.Tests.Models.CheckpointVariants;
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
    private readonly CheckpointVariants _variants = new();

    public void Dispose() => _variants.Dispose();

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
    public void Tie_word_embeddings_decides_whether_a_stored_lm_head_is_used()
    {
        using var scope = NewDisposeScope();
        Tensor head = torch.randn(128256, 64, generator: new Generator(7)).to(ScalarType.BFloat16);
        var storedHead = new TensorToWrite("lm_head.weight", SafetensorsDtype.BF16, [128256, 64], head.bytes.ToArray());
        string tied = _variants.WriteVariant(Fixture, "tied-head", tensors => tensors.Append(storedHead));
        using (LlamaModel model = LlamaCheckpointLoader.Load(tied, ScalarType.Float32, CPU))
        {
            Assert.DoesNotContain("lm_head.weight", model.state_dict().Keys);
        }
        AssertSameLogits(Fixture, tied, Probe);

        string separate = _variants.WriteVariant(Fixture, "own-head", tensors => tensors.Append(storedHead), config => config["tie_word_embeddings"] = false);
        using LlamaModel withHead = LlamaCheckpointLoader.Load(separate, ScalarType.Float32, CPU);
        using var noGrad = torch.no_grad();
        Tensor hidden = torch.randn(3, 64, generator: new Generator(8));
        Assert.True(withHead.Logits(hidden).allclose(hidden.matmul(head.to(ScalarType.Float32).t()), rtol: 1e-5, atol: 1e-5));

        string headless = _variants.WriteVariant(Fixture, "untied-no-head", tensors => tensors, config => config["tie_word_embeddings"] = false);
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
        string qwen2 = _variants.WriteVariant(Fixture, "qwen2", tensors => tensors.Concat(zeroBiases), config => config["model_type"] = "qwen2");
        using (LlamaModel model = LlamaCheckpointLoader.Load(qwen2, ScalarType.Float32, CPU))
        {
            Assert.Contains("model.layers.1.self_attn.v_proj.bias", model.state_dict().Keys);
            Assert.DoesNotContain("model.layers.1.self_attn.o_proj.bias", model.state_dict().Keys);
        }
        AssertSameLogits(Fixture, qwen2, Probe);

        string missing = _variants.WriteVariant(Fixture, "qwen2-no-bias", tensors => tensors, config => config["model_type"] = "qwen2");
        var error = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(missing, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(missing, "model.safetensors"), "q_proj.bias");

        var ones = Enumerable.Repeat(1f, 32).SelectMany(BitConverter.GetBytes).ToArray();
        string shifted = _variants.WriteVariant(Fixture, "qwen2-shifted", tensors => tensors.Concat(zeroBiases.Select(t =>
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
        string variant = _variants.CopyConfig(Fixture, $"rope-{type}", config => config["rope_scaling"] = new JsonObject { ["rope_type"] = type, ["factor"] = 4.0 });
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
        string variant = _variants.CopyConfig(Fixture, "mistral-window", config =>
        {
            config["model_type"] = "mistral";
            config["sliding_window"] = 256;
        });
        var error = Assert.Throws<CheckpointFormatException>(() => LlamaCheckpointLoader.Load(variant, ScalarType.Float32, CPU));
        AssertOneLine(error, Path.Combine(variant, "config.json"), "sliding_window 256");

        // A window as long as the context changes nothing and loads.
        string wide = _variants.WriteVariant(Fixture, "mistral-wide-window", tensors => tensors, config =>
        {
            config["model_type"] = "mistral";
            config["sliding_window"] = 512;
        });
        AssertSameLogits(Fixture, wide, Probe);
    }





}
