using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;
using static LlmServer.Inference.Tests.Models.CheckpointVariants;
using TensorToWrite = LlmServer.Inference.Models.Safetensors.SafetensorsWriter.TensorToWrite;

namespace LlmServer.Inference.Tests.Models.Llama;

/// <summary>
/// Llama 3 and Qwen3 checkpoints laid out as Hugging Face publishes them (sharded with an index, BF16,
/// F16 or F32), rebuilt here from the fixtures, load through <see cref="ModelArchitectures"/> as the
/// server loads them and compute the fixture's logits; every way such a directory goes bad (a shard
/// or tensor missing, a truncated shard, a foreign dtype, a config that lacks a key or asks for what
/// this forward does not run) is a <see cref="CheckpointFormatException"/> of one line naming the file.
/// </summary>
public sealed class PublishedCheckpointLayoutTests : IDisposable
{
    private static readonly long[] Probe = [9906, 11, 856, 836, 374, 13];
    private readonly CheckpointVariants _variants = new();

    public static TheoryData<string> Fixtures => new() { "llama3-random-2l-64d", "qwen3-random-2l-64d" };

    public void Dispose() => _variants.Dispose();

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Two_shards_with_an_index_give_the_logits_of_the_single_file(string fixture)
    {
        string directory = _variants.WriteShards(fixture, "sharded", ReadTensors(fixture));
        Assert.False(File.Exists(Path.Combine(directory, "model.safetensors")));

        AssertSameLogits(fixture, directory, Probe, 0);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Float32_copies_of_the_bfloat16_weights_give_the_same_logits_and_float16_copies_close_ones(string fixture)
    {
        // BF16 widens to F32 exactly; F16 has three more mantissa bits but a narrower range, so the
        // smallest random weights lose bits as F16 subnormals.
        string f32 = _variants.WriteSingle(fixture, "f32", ReadTensors(fixture).Select(t => Convert(t, SafetensorsDtype.F32, ScalarType.Float32)));
        AssertSameLogits(fixture, f32, Probe, 0);

        string f16 = _variants.WriteShards(fixture, "f16-sharded", ReadTensors(fixture).Select(t => Convert(t, SafetensorsDtype.F16, ScalarType.Float16)).ToList());
        AssertSameLogits(fixture, f16, Probe, 1e-3);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_shard_the_index_names_but_the_directory_lacks_is_named(string fixture)
    {
        string directory = _variants.WriteShards(fixture, "lost-shard", ReadTensors(fixture));
        File.Delete(Path.Combine(directory, SecondShard));

        AssertOneLine(Load(directory), Path.Combine(directory, SecondShard), $"missing: {ShardIndex} names this shard");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_tensor_the_index_puts_in_a_shard_that_lacks_it_is_named_with_the_shard(string fixture)
    {
        List<TensorToWrite> tensors = ReadTensors(fixture);
        string directory = _variants.WriteShards(fixture, "stale-index", tensors);
        string dropped = SecondHalf(tensors).First().Name;
        SafetensorsWriter.Write(Path.Combine(directory, SecondShard), SecondHalf(tensors).Where(t => t.Name != dropped));

        AssertOneLine(Load(directory), Path.Combine(directory, SecondShard), $"tensor '{dropped}' is missing, though {ShardIndex} puts it in this shard");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_truncated_shard_is_named_and_called_truncated(string fixture)
    {
        string directory = _variants.WriteShards(fixture, "truncated", ReadTensors(fixture));
        string shard = Path.Combine(directory, FirstShard);
        using (var stream = new FileStream(shard, FileMode.Open))
        {
            stream.SetLength(stream.Length / 2);
        }

        AssertOneLine(Load(directory), shard, "truncated");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_tensor_of_the_wrong_shape_is_named_with_both_shapes(string fixture)
    {
        const string name = "model.layers.1.mlp.down_proj.weight";
        List<TensorToWrite> tensors = ReadTensors(fixture);
        TensorToWrite original = tensors.Single(t => t.Name == name);
        // The same bytes read as the transpose: the shape a converter that forgot nn.Linear's layout writes.
        TensorToWrite transposed = original with { Shape = [original.Shape[1], original.Shape[0]] };
        string directory = _variants.WriteShards(fixture, "transposed", tensors.Select(t => t.Name == name ? transposed : t).ToList());

        CheckpointFormatException error = Load(directory);
        AssertOneLine(error, Path.Combine(directory, ShardOf(tensors, name)), $"tensor '{name}' has shape [{original.Shape[1]}, {original.Shape[0]}]");
        Assert.Contains($"config.json implies [{original.Shape[0]}, {original.Shape[1]}]", error.Message);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_dtype_the_format_does_not_know_is_named_with_the_tensor(string fixture)
    {
        string directory = _variants.WriteSingle(fixture, "fp8", ReadTensors(fixture));
        string file = Path.Combine(directory, "model.safetensors");
        RewriteHeader(file, header => header.Replace("\"BF16\"", "\"F8_E4M3\"", StringComparison.Ordinal));

        CheckpointFormatException error = Load(directory);
        AssertOneLine(error, file, "unknown dtype 'F8_E4M3'");
        Assert.Contains("tensor 'model.", error.Message);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void An_integer_or_float64_weight_is_refused_naming_the_tensor(string fixture)
    {
        const string name = "model.norm.weight";
        string directory = _variants.WriteShards(fixture, "float64", ReadTensors(fixture).Select(t => t.Name == name ? Convert(t, SafetensorsDtype.F64, ScalarType.Float64) : t).ToList());

        AssertOneLine(Load(directory), Path.Combine(directory, ShardOf(ReadTensors(fixture), name)), $"tensor '{name}' is F64; weights must be F32, F16 or BF16");
    }

    [Fact]
    public void A_directory_with_only_pytorch_pickles_says_they_are_not_read()
    {
        const string fixture = "qwen3-random-2l-64d";
        string directory = _variants.CopyConfig(fixture, "pickled", editConfig: null);
        File.WriteAllBytes(Path.Combine(directory, "pytorch_model.bin"), [0x50, 0x4b, 0x03, 0x04]);

        AssertOneLine(Load(directory), Path.Combine(directory, "model.safetensors"), "only pytorch_model.bin (PyTorch pickle), which is not read");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_config_without_num_hidden_layers_says_so(string fixture)
    {
        string directory = _variants.WriteSingle(fixture, "no-layers", ReadTensors(fixture), config => config.Remove("num_hidden_layers"));

        AssertOneLine(Load(directory), Path.Combine(directory, "config.json"), "num_hidden_layers missing");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_config_value_of_the_wrong_type_names_the_key(string fixture)
    {
        string directory = _variants.WriteSingle(fixture, "layers-as-text", ReadTensors(fixture), config => config["num_hidden_layers"] = "2");

        AssertOneLine(Load(directory), Path.Combine(directory, "config.json"), "num_hidden_layers has a value of the wrong type");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Yarn_rope_scaling_is_refused_naming_the_type(string fixture)
    {
        // As Qwen's model cards tell users to extend the context: the legacy "type" key.
        string directory = _variants.WriteSingle(fixture, "yarn", ReadTensors(fixture), config =>
            config["rope_scaling"] = new JsonObject { ["type"] = "yarn", ["factor"] = 4.0, ["original_max_position_embeddings"] = 32768 });

        AssertOneLine(Load(directory), Path.Combine(directory, "config.json"), "unsupported rope_scaling type 'yarn' (supported: default, llama3, linear)");
    }

    [Fact]
    public void Mistral_7b_v01s_4096_token_window_is_refused_and_a_window_free_mistral_loads()
    {
        const string fixture = "llama3-random-2l-64d";
        string windowed = _variants.WriteSingle(fixture, "mistral-v0.1", ReadTensors(fixture), config =>
        {
            config["architectures"] = new JsonArray("MistralForCausalLM");
            config["model_type"] = "mistral";
            config["sliding_window"] = 4096;
            config["max_position_embeddings"] = 32768;
        });
        AssertOneLine(Load(windowed), Path.Combine(windowed, "config.json"),
            "sliding_window 4096 is smaller than max_position_embeddings 32768; sliding-window attention is not supported");

        // Mistral 7B v0.2 and later write "sliding_window": null.
        string windowless = _variants.WriteSingle(fixture, "mistral-v0.3", ReadTensors(fixture), config =>
        {
            config["architectures"] = new JsonArray("MistralForCausalLM");
            config["model_type"] = "mistral";
            config["sliding_window"] = null;
        });
        AssertSameLogits(fixture, windowless, Probe, 0);
    }

    [Fact]
    public void Qwen_with_use_sliding_window_on_is_refused_and_with_it_off_loads()
    {
        const string fixture = "qwen3-random-2l-64d";
        string on = _variants.WriteSingle(fixture, "qwen-window-on", ReadTensors(fixture), config =>
        {
            config["use_sliding_window"] = true;
            config["sliding_window"] = 128;
        });
        AssertOneLine(Load(on), Path.Combine(on, "config.json"), "sliding_window 128 is smaller than max_position_embeddings 512");

        string off = _variants.WriteSingle(fixture, "qwen-window-off", ReadTensors(fixture), config => config["sliding_window"] = 128);
        AssertSameLogits(fixture, off, Probe, 0);
    }

    [Fact]
    public void A_checkpoint_with_weights_its_config_has_no_place_for_is_refused()
    {
        // Qwen2 weights (q/k/v biases) under a config that says llama: the biases would be dropped.
        const string fixture = "llama3-random-2l-64d";
        var bias = new TensorToWrite("model.layers.0.self_attn.q_proj.bias", SafetensorsDtype.BF16, [64], new byte[64 * 2]);
        string directory = _variants.WriteShards(fixture, "stray-bias", [.. ReadTensors(fixture), bias]);

        AssertOneLine(Load(directory), Path.Combine(directory, ShardOf([.. ReadTensors(fixture), bias], bias.Name)),
            "tensor 'model.layers.0.self_attn.q_proj.bias' has no place in the llama network config.json describes");
    }

    [Theory]
    [InlineData("mixtral", "MixtralForCausalLM")]
    [InlineData(null, "Phi3ForCausalLM")]
    public void An_unknown_architecture_is_one_line_listing_the_supported_ones(string? modelType, string className)
    {
        const string fixture = "llama3-random-2l-64d";
        string directory = _variants.WriteSingle(fixture, className, ReadTensors(fixture), config =>
        {
            config["architectures"] = new JsonArray(className);
            if (modelType is null)
            {
                config.Remove("model_type");
            }
            else
            {
                config["model_type"] = modelType;
            }
        });

        CheckpointFormatException error = Load(directory);
        AssertOneLine(error, Path.Combine(directory, "config.json"), $"unsupported architecture '{className}'");
        foreach (string supported in new[] { "GPT2LMHeadModel", "LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM" })
        {
            Assert.Contains(supported, error.Message);
        }
    }

    private static CheckpointFormatException Load(string directory) =>
        Assert.Throws<CheckpointFormatException>(() => ModelArchitectures.Load(directory, ScalarType.Float32, CPU).Dispose());




    private static TensorToWrite Convert(TensorToWrite stored, SafetensorsDtype dtype, ScalarType type)
    {
        using var scope = NewDisposeScope();
        Tensor original = empty(stored.Shape, ScalarType.BFloat16);
        original.bytes = stored.Data.ToArray();
        return new TensorToWrite(stored.Name, dtype, stored.Shape, original.to(type).bytes.ToArray());
    }

    // Shards as transformers' save_pretrained splits them: tensors in name order, each in one shard.






    /// <summary>Rewrites a safetensors header in place of the writer's, keeping the 8-byte length prefix honest.</summary>
    private static void RewriteHeader(string path, Func<string, string> edit)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        byte[] header = Encoding.UTF8.GetBytes(edit(Encoding.UTF8.GetString(bytes, sizeof(ulong), headerLength)));
        using var stream = new FileStream(path, FileMode.Create);
        Span<byte> prefix = stackalloc byte[sizeof(ulong)];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        stream.Write(bytes.AsSpan(sizeof(ulong) + headerLength));
    }
}
