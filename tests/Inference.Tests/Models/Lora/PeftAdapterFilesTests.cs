using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;
using TensorToWrite = LlmServer.Inference.Models.Safetensors.SafetensorsWriter.TensorToWrite;

namespace LlmServer.Inference.Tests.Models.Lora;

/// <summary>
/// Adapters are saved the way PEFT saves a GPT2LMHeadModel adapter and load back bit for bit;
/// directories this server cannot apply fail with one line naming the file and the reason.
/// </summary>
public sealed class PeftAdapterFilesTests : IDisposable
{
    private const string Fixture = "gpt2-random-2l-64d";
    private readonly string _root = Directory.CreateTempSubdirectory("peft-tests-").FullName;
    private readonly Gpt2Model _model = CheckpointLoader.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);

    public void Dispose()
    {
        _model.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void Saved_keys_are_exactly_PEFTs_and_the_config_says_LORA()
    {
        using LoraAdapter adapter = RandomAdapter(new LoraSettings(4, 8, ["c_attn", "attn.c_proj"]));
        string directory = Path.Combine(_root, "adapter");
        PeftAdapterFiles.Save(adapter, directory, "gpt2-random-2l-64d");

        using (SafetensorsFile file = SafetensorsFile.Open(Path.Combine(directory, "adapter_model.safetensors")))
        {
            string[] expected = new[] { "0", "1" }.SelectMany(layer => new[] { "c_attn", "c_proj" }.SelectMany(module => new[] { "A", "B" }
                .Select(ab => $"base_model.model.transformer.h.{layer}.attn.{module}.lora_{ab}.weight"))).Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(expected, file.Tensors.Keys.Order(StringComparer.Ordinal));
            Assert.All(file.Tensors.Values, t => Assert.Equal(SafetensorsDtype.F32, t.Dtype));
            Assert.Equal([4L, 64], file.Tensors["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].Shape);
            Assert.Equal([192L, 4], file.Tensors["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].Shape);
        }
        JsonObject config = ReadConfig(directory);
        Assert.Equal("LORA", (string?)config["peft_type"]);
        Assert.Equal("CAUSAL_LM", (string?)config["task_type"]);
        Assert.Equal(4, (int?)config["r"]);
        Assert.Equal(8.0, (double?)config["lora_alpha"]);
        Assert.Equal(0.0, (double?)config["lora_dropout"]);
        Assert.Equal(["c_attn", "attn.c_proj"], config["target_modules"]!.AsArray().Select(t => (string?)t));
        Assert.True((bool?)config["fan_in_fan_out"]);
        Assert.Equal("none", (string?)config["bias"]);
        Assert.Equal("gpt2-random-2l-64d", (string?)config["base_model_name_or_path"]);
        Assert.False((bool?)config["use_rslora"]);
        Assert.True(config.ContainsKey("modules_to_save") && config["modules_to_save"] is null);
        Assert.True(PeftAdapterFiles.IsAdapterDirectory(directory));
        Assert.False(PeftAdapterFiles.IsAdapterDirectory(TestFixtures.ModelDirectory(Fixture)));
    }

    [Fact]
    public void Save_then_load_gives_the_same_weights_and_settings()
    {
        using LoraAdapter adapter = RandomAdapter(new LoraSettings(8, 32, ["c_attn", "c_proj", "c_fc"], UseRsLora: true));
        string directory = Path.Combine(_root, "round-trip");
        PeftAdapterFiles.Save(adapter, directory, "base");

        using LoraAdapter loaded = PeftAdapterFiles.Load(directory, _model);

        Assert.Equal(adapter.Settings.Rank, loaded.Settings.Rank);
        Assert.Equal(adapter.Settings.Alpha, loaded.Settings.Alpha);
        Assert.Equal(adapter.Settings.TargetModules, loaded.Settings.TargetModules);
        Assert.True(loaded.Settings.UseRsLora);
        var original = adapter.state_dict();
        var restored = loaded.state_dict();
        Assert.Equal(original.Keys, restored.Keys);
        foreach ((string key, Tensor weight) in original)
        {
            Assert.True(weight.eq(restored[key]).all().item<bool>(), $"{key} changed on the way through the files");
        }
    }

    [Fact]
    public void A_half_precision_base_gets_the_adapter_in_its_own_dtype()
    {
        using LoraAdapter adapter = RandomAdapter(new LoraSettings(4, 8, ["c_fc"]));
        string directory = Path.Combine(_root, "half");
        PeftAdapterFiles.Save(adapter, directory, "base");
        using Gpt2Model half = CheckpointLoader.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.BFloat16, CPU);

        using LoraAdapter loaded = PeftAdapterFiles.Load(directory, half);

        Assert.All(loaded.parameters(), p => Assert.Equal(ScalarType.BFloat16, p.dtype));
    }

    public static TheoryData<string, string, string> BrokenAdapters => new()
    {
        { "not-lora", "adapter_config.json", "peft_type is \"PREFIX_TUNING\"; only LORA adapters are supported" },
        { "trained-bias", "adapter_config.json", "bias is \"all\"; only adapters without trained biases" },
        { "dora", "adapter_config.json", "DoRA adapters are not supported" },
        { "regex-targets", "adapter_config.json", "target_modules is a regular expression" },
        { "unknown-target", "adapter_config.json", "LoRA target module 'q_proj' matches no layer" },
        { "modules-to-save", "adapter_config.json", "modules_to_save lists fully trained modules" },
        { "lora-bias", "adapter_config.json", "lora_bias is true" },
        { "exclude-modules", "adapter_config.json", "exclude_modules is set" },
        { "layer-replication", "adapter_config.json", "layer_replication is set" },
        { "missing-key", "adapter_model.safetensors", "tensor 'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight' is missing" },
        { "unknown-key", "adapter_model.safetensors", "unexpected tensor 'base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight'" },
        { "rank-mismatch", "adapter_model.safetensors", "has rank 2 (shape [2, 64]) but adapter_config.json says r = 4" },
        { "shape-mismatch", "adapter_model.safetensors", "tensor 'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight' has shape [96, 4] but the base model's layer needs [192, 4]" },
        { "pickle-only", "adapter_model.safetensors", "only adapter_model.bin (pickle) is there" },
        { "no-config", "adapter_config.json", "missing: a PEFT adapter directory needs adapter_config.json" },
    };

    [Theory]
    [MemberData(nameof(BrokenAdapters))]
    public void A_broken_adapter_fails_with_one_line_naming_the_file(string variant, string file, string problem)
    {
        string directory = WriteBroken(variant);

        var error = Assert.Throws<CheckpointFormatException>(() => PeftAdapterFiles.Load(directory, _model));

        Assert.Equal(Path.Combine(directory, file), error.FilePath);
        Assert.Contains(problem, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void A_missing_directory_says_so()
    {
        var error = Assert.Throws<CheckpointFormatException>(() => PeftAdapterFiles.Load(Path.Combine(_root, "nowhere"), _model));
        Assert.Contains("no such adapter directory", error.Message);
    }

    /// <summary>A valid adapter (r = 4 on c_attn) saved, then spoiled in one way.</summary>
    private string WriteBroken(string variant)
    {
        using LoraAdapter adapter = RandomAdapter(new LoraSettings(4, 8, ["c_attn"]));
        string directory = Path.Combine(_root, variant);
        PeftAdapterFiles.Save(adapter, directory, "base");
        string configPath = Path.Combine(directory, "adapter_config.json");
        string weightsPath = Path.Combine(directory, "adapter_model.safetensors");
        JsonObject config = ReadConfig(directory);
        switch (variant)
        {
            case "not-lora": config["peft_type"] = "PREFIX_TUNING"; break;
            case "trained-bias": config["bias"] = "all"; break;
            case "dora": config["use_dora"] = true; break;
            case "regex-targets": config["target_modules"] = ".*c_attn"; break;
            case "unknown-target": config["target_modules"] = new JsonArray("c_attn", "q_proj"); break;
            case "modules-to-save": config["modules_to_save"] = new JsonArray("lm_head"); break;
            case "lora-bias": config["lora_bias"] = true; break;
            case "exclude-modules": config["exclude_modules"] = new JsonArray("h.0.attn.c_attn"); break;
            case "layer-replication": config["layer_replication"] = new JsonArray(new JsonArray(0, 2)); break;
            case "missing-key": RewriteWeights(weightsPath, tensors => tensors.Where(t => !t.Name.Contains("h.1.attn.c_attn.lora_B"))); break;
            case "unknown-key": RewriteWeights(weightsPath, tensors => tensors.Append(Zeros("base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight", [4, 64]))); break;
            case "rank-mismatch":
                RewriteWeights(weightsPath, tensors => tensors.Select(t => t.Name.EndsWith("lora_A.weight") ? Zeros(t.Name, [2, 64])
                    : Zeros(t.Name, [192, 2])));
                break;
            case "shape-mismatch":
                RewriteWeights(weightsPath, tensors => tensors.Select(t => t.Name.EndsWith("lora_B.weight") ? Zeros(t.Name, [96, 4]) : t));
                break;
            case "pickle-only": File.Move(weightsPath, Path.Combine(directory, "adapter_model.bin")); break;
            case "no-config": File.Delete(configPath); return directory;
        }
        File.WriteAllText(configPath, config.ToJsonString());
        return directory;
    }

    private static void RewriteWeights(string path, Func<IEnumerable<TensorToWrite>, IEnumerable<TensorToWrite>> change)
    {
        List<TensorToWrite> tensors;
        using (SafetensorsFile file = SafetensorsFile.Open(path))
        {
            tensors = file.Tensors.Values.Select(t => new TensorToWrite(t.Name, t.Dtype, t.Shape, file.GetBytes(t).ToArray())).ToList();
        }
        SafetensorsWriter.Write(path, change(tensors).ToList());
    }

    private static TensorToWrite Zeros(string name, long[] shape) =>
        new(name, SafetensorsDtype.F32, shape, new byte[shape.Aggregate(4L, (a, b) => a * b)]);

    private static JsonObject ReadConfig(string directory) =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "adapter_config.json")))!.AsObject();

    private LoraAdapter RandomAdapter(LoraSettings settings)
    {
        var generator = new Generator(9);
        LoraAdapter adapter = LoraAdapter.Create(_model.AdaptableLayers, settings, ScalarType.Float32, CPU, generator);
        using var noGrad = no_grad();
        foreach (LoraLayer layer in adapter.Layers.Values)
        {
            using Tensor noise = randn(layer.B.shape, generator: generator);
            layer.B.copy_(noise);
        }
        return adapter;
    }
}
