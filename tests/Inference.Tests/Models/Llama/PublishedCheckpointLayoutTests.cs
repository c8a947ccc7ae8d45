using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;
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
    private const string Index = "model.safetensors.index.json";
    private const string FirstShard = "model-00001-of-00002.safetensors";
    private const string SecondShard = "model-00002-of-00002.safetensors";
    private static readonly long[] Probe = [9906, 11, 856, 836, 374, 13];
    private readonly string _root = Directory.CreateTempSubdirectory("published-checkpoint-tests-").FullName;

    public static TheoryData<string> Fixtures => new() { "llama3-random-2l-64d", "qwen3-random-2l-64d" };

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Two_shards_with_an_index_give_the_logits_of_the_single_file(string fixture)
    {
        string directory = WriteShards(fixture, "sharded", ReadTensors(fixture));
        Assert.False(File.Exists(Path.Combine(directory, "model.safetensors")));

        AssertLogits(fixture, directory, tolerance: 0);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Float32_copies_of_the_bfloat16_weights_give_the_same_logits_and_float16_copies_close_ones(string fixture)
    {
        // BF16 widens to F32 exactly; F16 has three more mantissa bits but a narrower range, so the
        // smallest random weights lose bits as F16 subnormals.
        string f32 = WriteSingle(fixture, "f32", ReadTensors(fixture).Select(t => Convert(t, SafetensorsDtype.F32, ScalarType.Float32)));
        AssertLogits(fixture, f32, tolerance: 0);

        string f16 = WriteShards(fixture, "f16-sharded", ReadTensors(fixture).Select(t => Convert(t, SafetensorsDtype.F16, ScalarType.Float16)).ToList());
        AssertLogits(fixture, f16, tolerance: 1e-3);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_shard_the_index_names_but_the_directory_lacks_is_named(string fixture)
    {
        string directory = WriteShards(fixture, "lost-shard", ReadTensors(fixture));
        File.Delete(Path.Combine(directory, SecondShard));

        AssertOneLine(Load(directory), Path.Combine(directory, SecondShard), $"missing: {Index} names this shard");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_tensor_the_index_puts_in_a_shard_that_lacks_it_is_named_with_the_shard(string fixture)
    {
        List<TensorToWrite> tensors = ReadTensors(fixture);
        string directory = WriteShards(fixture, "stale-index", tensors);
        string dropped = SecondHalf(tensors).First().Name;
        SafetensorsWriter.Write(Path.Combine(directory, SecondShard), SecondHalf(tensors).Where(t => t.Name != dropped));

        AssertOneLine(Load(directory), Path.Combine(directory, SecondShard), $"tensor '{dropped}' is missing, though {Index} puts it in this shard");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_truncated_shard_is_named_and_called_truncated(string fixture)
    {
        string directory = WriteShards(fixture, "truncated", ReadTensors(fixture));
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
        string directory = WriteShards(fixture, "transposed", tensors.Select(t => t.Name == name ? transposed : t).ToList());

        CheckpointFormatException error = Load(directory);
        AssertOneLine(error, Path.Combine(directory, ShardOf(tensors, name)), $"tensor '{name}' has shape [{original.Shape[1]}, {original.Shape[0]}]");
        Assert.Contains($"config.json implies [{original.Shape[0]}, {original.Shape[1]}]", error.Message);
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_dtype_the_format_does_not_know_is_named_with_the_tensor(string fixture)
    {
        string directory = WriteSingle(fixture, "fp8", ReadTensors(fixture));
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
        string directory = WriteShards(fixture, "float64", ReadTensors(fixture).Select(t => t.Name == name ? Convert(t, SafetensorsDtype.F64, ScalarType.Float64) : t).ToList());

        AssertOneLine(Load(directory), Path.Combine(directory, ShardOf(ReadTensors(fixture), name)), $"tensor '{name}' is F64; weights must be F32, F16 or BF16");
    }

    [Fact]
    public void A_directory_with_only_pytorch_pickles_says_they_are_not_read()
    {
        const string fixture = "qwen3-random-2l-64d";
        string directory = CopyConfigs(fixture, "pickled", editConfig: null);
        File.WriteAllBytes(Path.Combine(directory, "pytorch_model.bin"), [0x50, 0x4b, 0x03, 0x04]);

        AssertOneLine(Load(directory), Path.Combine(directory, "model.safetensors"), "only pytorch_model.bin (PyTorch pickle), which is not read");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_config_without_num_hidden_layers_says_so(string fixture)
    {
        string directory = WriteSingle(fixture, "no-layers", ReadTensors(fixture), config => config.Remove("num_hidden_layers"));

        AssertOneLine(Load(directory), Path.Combine(directory, "config.json"), "num_hidden_layers missing");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void A_config_value_of_the_wrong_type_names_the_key(string fixture)
    {
        string directory = WriteSingle(fixture, "layers-as-text", ReadTensors(fixture), config => config["num_hidden_layers"] = "2");

        AssertOneLine(Load(directory), Path.Combine(directory, "config.json"), "num_hidden_layers has a value of the wrong type");
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Yarn_rope_scaling_is_refused_naming_the_type(string fixture)
    {
        // As Qwen's model cards tell users to extend the context: the legacy "type" key.
        string directory = WriteSingle(fixture, "yarn", ReadTensors(fixture), config =>
            config["rope_scaling"] = new JsonObject { ["type"] = "yarn", ["factor"] = 4.0, ["original_max_position_embeddings"] = 32768 });

        AssertOneLine(Load(directory), Path.Combine(directory, "config.json"), "unsupported rope_scaling type 'yarn' (supported: default, llama3, linear)");
    }

    [Fact]
    public void Mistral_7b_v01s_4096_token_window_is_refused_and_a_window_free_mistral_loads()
    {
        const string fixture = "llama3-random-2l-64d";
        string windowed = WriteSingle(fixture, "mistral-v0.1", ReadTensors(fixture), config =>
        {
            config["architectures"] = new JsonArray("MistralForCausalLM");
            config["model_type"] = "mistral";
            config["sliding_window"] = 4096;
            config["max_position_embeddings"] = 32768;
        });
        AssertOneLine(Load(windowed), Path.Combine(windowed, "config.json"),
            "sliding_window 4096 is smaller than max_position_embeddings 32768; sliding-window attention is not supported");

        // Mistral 7B v0.2 and later write "sliding_window": null.
        string windowless = WriteSingle(fixture, "mistral-v0.3", ReadTensors(fixture), config =>
        {
            config["architectures"] = new JsonArray("MistralForCausalLM");
            config["model_type"] = "mistral";
            config["sliding_window"] = null;
        });
        AssertLogits(fixture, windowless, tolerance: 0);
    }

    [Fact]
    public void Qwen_with_use_sliding_window_on_is_refused_and_with_it_off_loads()
    {
        const string fixture = "qwen3-random-2l-64d";
        string on = WriteSingle(fixture, "qwen-window-on", ReadTensors(fixture), config =>
        {
            config["use_sliding_window"] = true;
            config["sliding_window"] = 128;
        });
        AssertOneLine(Load(on), Path.Combine(on, "config.json"), "sliding_window 128 is smaller than max_position_embeddings 512");

        string off = WriteSingle(fixture, "qwen-window-off", ReadTensors(fixture), config => config["sliding_window"] = 128);
        AssertLogits(fixture, off, tolerance: 0);
    }

    [Fact]
    public void A_checkpoint_with_weights_its_config_has_no_place_for_is_refused()
    {
        // Qwen2 weights (q/k/v biases) under a config that says llama: the biases would be dropped.
        const string fixture = "llama3-random-2l-64d";
        var bias = new TensorToWrite("model.layers.0.self_attn.q_proj.bias", SafetensorsDtype.BF16, [64], new byte[64 * 2]);
        string directory = WriteShards(fixture, "stray-bias", [.. ReadTensors(fixture), bias]);

        AssertOneLine(Load(directory), Path.Combine(directory, ShardOf([.. ReadTensors(fixture), bias], bias.Name)),
            "tensor 'model.layers.0.self_attn.q_proj.bias' has no place in the llama network config.json describes");
    }

    [Theory]
    [InlineData("mixtral", "MixtralForCausalLM")]
    [InlineData(null, "Phi3ForCausalLM")]
    public void An_unknown_architecture_is_one_line_listing_the_supported_ones(string? modelType, string className)
    {
        const string fixture = "llama3-random-2l-64d";
        string directory = WriteSingle(fixture, className, ReadTensors(fixture), config =>
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

    private static void AssertOneLine(CheckpointFormatException error, string path, string problem)
    {
        Assert.DoesNotContain('\n', error.Message);
        Assert.StartsWith(path + ": ", error.Message);
        Assert.Contains(problem, error.Message);
    }

    private static void AssertLogits(string fixture, string directory, double tolerance)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        using ICausalLanguageModel expected = ModelArchitectures.Load(TestFixtures.ModelDirectory(fixture), ScalarType.Float32, CPU);
        using ICausalLanguageModel actual = ModelArchitectures.Load(directory, ScalarType.Float32, CPU);
        Tensor ids = tensor(Probe).unsqueeze(0);                                          // (1, T)
        Tensor want = expected.ForwardTraining(ids);                                      // (1, T, vocab)
        Tensor got = actual.ForwardTraining(ids);                                         // (1, T, vocab)
        double difference = (want - got).abs().max().item<float>();
        Assert.True(difference <= tolerance, $"logits differ from the fixture's by {difference} (allowed {tolerance})");
        Assert.Equal(want.argmax(-1).data<long>().ToArray(), got.argmax(-1).data<long>().ToArray());
    }

    private static List<TensorToWrite> ReadTensors(string fixture)
    {
        using SafetensorsFile file = SafetensorsFile.Open(Path.Combine(TestFixtures.ModelDirectory(fixture), "model.safetensors"));
        return file.Tensors.Values.Select(t => new TensorToWrite(t.Name, t.Dtype, t.Shape, file.GetBytes(t).ToArray())).ToList();
    }

    private static TensorToWrite Convert(TensorToWrite stored, SafetensorsDtype dtype, ScalarType type)
    {
        using var scope = NewDisposeScope();
        Tensor original = empty(stored.Shape, ScalarType.BFloat16);
        original.bytes = stored.Data.ToArray();
        return new TensorToWrite(stored.Name, dtype, stored.Shape, original.to(type).bytes.ToArray());
    }

    // Shards as transformers' save_pretrained splits them: tensors in name order, each in one shard.
    private static IEnumerable<TensorToWrite> FirstHalf(List<TensorToWrite> tensors) =>
        tensors.OrderBy(t => t.Name, StringComparer.Ordinal).Take(tensors.Count / 2);

    private static IEnumerable<TensorToWrite> SecondHalf(List<TensorToWrite> tensors) =>
        tensors.OrderBy(t => t.Name, StringComparer.Ordinal).Skip(tensors.Count / 2);

    private static string ShardOf(List<TensorToWrite> tensors, string name) =>
        FirstHalf(tensors).Any(t => t.Name == name) ? FirstShard : SecondShard;

    private string WriteShards(string fixture, string name, List<TensorToWrite> tensors, Action<JsonObject>? editConfig = null)
    {
        string directory = CopyConfigs(fixture, name, editConfig);
        SafetensorsWriter.Write(Path.Combine(directory, FirstShard), FirstHalf(tensors), new Dictionary<string, string> { ["format"] = "pt" });
        SafetensorsWriter.Write(Path.Combine(directory, SecondShard), SecondHalf(tensors), new Dictionary<string, string> { ["format"] = "pt" });
        var weightMap = new JsonObject();
        foreach (TensorToWrite tensor in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            weightMap[tensor.Name] = ShardOf(tensors, tensor.Name);
        }
        long totalSize = tensors.Sum(t => (long)t.Data.Length);
        File.WriteAllText(Path.Combine(directory, Index),
            new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalSize }, ["weight_map"] = weightMap }.ToJsonString());
        return directory;
    }

    private string WriteSingle(string fixture, string name, IEnumerable<TensorToWrite> tensors, Action<JsonObject>? editConfig = null)
    {
        string directory = CopyConfigs(fixture, name, editConfig);
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return directory;
    }

    /// <summary>config.json (edited) and the files published beside the weights.</summary>
    private string CopyConfigs(string fixture, string name, Action<JsonObject>? editConfig)
    {
        string source = TestFixtures.ModelDirectory(fixture);
        string directory = Path.Combine(_root, name);
        Directory.CreateDirectory(directory);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString());
        foreach (string file in new[] { "generation_config.json", "tokenizer.json", "tokenizer_config.json" })
        {
            File.Copy(Path.Combine(source, file), Path.Combine(directory, file));
        }
        return directory;
    }

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
