using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Llama;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// random-model's checkpoints: every architecture writes a directory the server loads with the
/// shape asked for and transformers' initialisation, and the published shapes are the published
/// config.json files (checked without writing their weights).
/// </summary>
public sealed class RandomCheckpointTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("random-checkpoint-tests-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("llama", 16)]
    [InlineData("mistral", 16)]
    [InlineData("qwen2", 16)]
    [InlineData("qwen3", 32)]
    public void Each_llama_family_architecture_writes_a_directory_that_loads_with_its_shape(string modelType, int headSize)
    {
        LlamaConfig config = PublishedLlamaShapes.Get(modelType, "tiny");
        string directory = Path.Combine(_root, modelType);
        RandomCheckpoint.Create(config, directory, TestFixtures.TokenizerDirectory, seed: 3);

        Assert.Equal(modelType, ModelArchitectures.ModelTypeOf(directory));
        using ICausalLanguageModel model = ModelArchitectures.Load(directory, ScalarType.Float32, CPU);
        Assert.Equal(modelType, model.Shape.ModelType);
        Assert.Equal((2, 64, 4, 2, headSize, 50304), (model.Shape.LayerCount, model.Shape.HiddenSize, model.Shape.HeadCount,
            model.Shape.KvHeadCount, model.Shape.HeadSize, model.Shape.VocabSize));
        // The tokenizer's files travel with the weights, so the directory serves as it is.
        Assert.True(File.Exists(Path.Combine(directory, "vocab.json")));
        Assert.True(File.Exists(Path.Combine(directory, "merges.txt")));
    }

    [Fact]
    public void Weights_follow_transformers_initialisation_norms_one_biases_zero_the_rest_normal_with_std_0_02()
    {
        string directory = Path.Combine(_root, "qwen2");
        RandomCheckpoint.Create(PublishedLlamaShapes.Get("qwen2", "tiny"), directory, TestFixtures.TokenizerDirectory, seed: 5);
        using ICausalLanguageModel model = ModelArchitectures.Load(directory, ScalarType.Float32, CPU);

        var tensors = model.CheckpointTensors().ToList();
        Assert.Contains(tensors, t => t.Key.EndsWith("q_proj.bias"));
        foreach ((string key, Tensor weight) in tensors)
        {
            if (key.EndsWith("norm.weight"))
            {
                Assert.True(weight.eq(1).all().item<bool>(), key);
            }
            else if (key.EndsWith(".bias"))
            {
                Assert.True(weight.eq(0).all().item<bool>(), key);
            }
            else
            {
                Assert.InRange(weight.std().item<float>(), 0.018f, 0.022f);
                Assert.InRange(weight.mean().item<float>(), -0.002f, 0.002f);
            }
        }
    }

    [Fact]
    public void A_seed_gives_the_same_weights_and_another_seed_others()
    {
        LlamaConfig config = PublishedLlamaShapes.Get("llama", "tiny");
        RandomCheckpoint.Create(config, Path.Combine(_root, "a"), TestFixtures.TokenizerDirectory, seed: 1);
        RandomCheckpoint.Create(config, Path.Combine(_root, "b"), TestFixtures.TokenizerDirectory, seed: 1);
        RandomCheckpoint.Create(config, Path.Combine(_root, "c"), TestFixtures.TokenizerDirectory, seed: 2);

        byte[] a = File.ReadAllBytes(Path.Combine(_root, "a", "model.safetensors"));
        Assert.Equal(a, File.ReadAllBytes(Path.Combine(_root, "b", "model.safetensors")));
        Assert.NotEqual(a, File.ReadAllBytes(Path.Combine(_root, "c", "model.safetensors")));
    }

    [Fact]
    public void Qwen2_5_0_5B_is_the_published_config()
    {
        JsonObject json = PublishedLlamaShapes.Get("qwen2", "0.5B").ToCheckpointJson();

        Assert.Equal("Qwen2ForCausalLM", (string?)json["architectures"]![0]);
        Assert.Equal(896, (int)json["hidden_size"]!);
        Assert.Equal(4864, (int)json["intermediate_size"]!);
        Assert.Equal(24, (int)json["num_hidden_layers"]!);
        Assert.Equal(14, (int)json["num_attention_heads"]!);
        Assert.Equal(2, (int)json["num_key_value_heads"]!);
        Assert.Null(json["head_dim"]);
        Assert.Equal(151936, (int)json["vocab_size"]!);
        Assert.Equal(1e6, (double)json["rope_theta"]!);
        Assert.Null(json["rope_scaling"]);
        Assert.True((bool)json["tie_word_embeddings"]!);
        Assert.Equal(32768, (int)json["max_position_embeddings"]!);
        Assert.Equal(1e-6, (double)json["rms_norm_eps"]!);
        Assert.False((bool)json["use_sliding_window"]!);
    }

    [Fact]
    public void Llama_3_2_1B_is_the_published_config_with_llama3_rope_scaling()
    {
        JsonObject json = PublishedLlamaShapes.Get("llama", "1B").ToCheckpointJson();

        Assert.Equal("LlamaForCausalLM", (string?)json["architectures"]![0]);
        Assert.Equal((2048, 8192, 16, 32, 8, 64, 128256), ((int)json["hidden_size"]!, (int)json["intermediate_size"]!, (int)json["num_hidden_layers"]!,
            (int)json["num_attention_heads"]!, (int)json["num_key_value_heads"]!, (int)json["head_dim"]!, (int)json["vocab_size"]!));
        Assert.Equal(500000.0, (double)json["rope_theta"]!);
        JsonNode scaling = json["rope_scaling"]!;
        Assert.Equal("llama3", (string?)scaling["rope_type"]);
        Assert.Equal((32.0, 1.0, 4.0, 8192), ((double)scaling["factor"]!, (double)scaling["low_freq_factor"]!, (double)scaling["high_freq_factor"]!,
            (int)scaling["original_max_position_embeddings"]!));
        Assert.Equal(131072, (int)json["max_position_embeddings"]!);
        Assert.Equal(1e-5, (double)json["rms_norm_eps"]!);
        Assert.True((bool)json["tie_word_embeddings"]!);
        Assert.Equal([128001, 128008, 128009], json["eos_token_id"]!.AsArray().Select(id => (int)id!));
    }

    [Theory]
    [InlineData("llama", "360M", 960, 2560, 32, 15, 5, 64, 49152)]
    [InlineData("qwen3", "0.6B", 1024, 3072, 28, 16, 8, 128, 151936)]
    [InlineData("mistral", "7B", 4096, 14336, 32, 32, 8, 128, 32768)]
    public void The_other_published_shapes_have_their_published_dimensions(string modelType, string name,
        int hidden, int intermediate, int layers, int heads, int kvHeads, int headSize, int vocab)
    {
        LlamaConfig config = PublishedLlamaShapes.Get(modelType, name);

        Assert.Equal((hidden, intermediate, layers, heads, kvHeads, headSize, vocab),
            (config.HiddenSize, config.IntermediateSize, config.LayerCount, config.HeadCount, config.KvHeadCount, config.HeadSize, config.VocabSize));
        // Every published shape is one the loader accepts (Mistral v0.3 has no sliding window).
        config.Validate("config.json");
    }

    [Theory]
    // The parameter counts Hugging Face lists for the published checkpoints (tied heads counted once).
    [InlineData("qwen2", "0.5B", 494_032_768L)]
    [InlineData("llama", "1B", 1_235_814_400L)]
    public void Published_shapes_have_the_published_parameter_counts(string modelType, string name, long parameters)
    {
        LlamaConfig c = PublishedLlamaShapes.Get(modelType, name);
        long attention = (long)c.HiddenSize * c.HeadCount * c.HeadSize * 2 + (long)c.HiddenSize * c.KvHeadCount * c.HeadSize * 2
            + (c.QkvBias ? (long)(c.HeadCount + 2 * c.KvHeadCount) * c.HeadSize : 0);
        long mlp = 3L * c.HiddenSize * c.IntermediateSize;
        long norms = 2L * c.HiddenSize + (c.QkNorm ? 2L * c.HeadSize : 0);
        long embeddings = (long)c.VocabSize * c.HiddenSize * (c.TieWordEmbeddings ? 1 : 2);

        Assert.Equal(parameters, c.LayerCount * (attention + mlp + norms) + c.HiddenSize + embeddings);
    }

    [Fact]
    public void An_unknown_shape_names_the_known_ones()
    {
        var error = Assert.Throws<ArgumentException>(() => PublishedLlamaShapes.Get("qwen2", "72B"));
        Assert.Contains("0.5B", error.Message);
        Assert.Contains("tiny", error.Message);
    }
}
