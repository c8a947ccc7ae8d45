using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Models.Safetensors;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// Reads and writes a LoRA adapter as a PEFT adapter directory (adapter_config.json and
/// adapter_model.safetensors), the layout PEFT's save_pretrained writes for a GPT2LMHeadModel or a
/// *ForCausalLM of the Llama family and PeftModel.from_pretrained, vLLM and this server read back.
/// </summary>
public static class PeftAdapterFiles
{
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>
    /// What PEFT puts before a module path in the saved keys: its wrappers' "base_model.model." and
    /// the architecture's own prefix ("transformer." for GPT-2); the adapter name is left out.
    /// </summary>
    public static string KeyPrefix(AdaptableLayers model) => "base_model.model." + model.PeftNamePrefix;

    private const string PickledWeightsFileName = "adapter_model.bin";

    public static bool IsAdapterDirectory(string directory) => File.Exists(Path.Combine(directory, ConfigFileName));

    /// <summary>Writes the adapter into <paramref name="directory"/> (created if needed), weights as float32.</summary>
    public static void Save(LoraAdapter adapter, string directory, string baseModelNameOrPath)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        Directory.CreateDirectory(directory);
        File.WriteAllText(Path.Combine(directory, ConfigFileName), ConfigJson(adapter.Settings, adapter.Model, baseModelNameOrPath));
        SafetensorsWriter.Write(Path.Combine(directory, WeightsFileName), Tensors(adapter),
            new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Loads an adapter for <paramref name="baseModel"/>, on its device and in its dtype.</summary>
    /// <exception cref="CheckpointFormatException">The directory is not a LoRA adapter this server can apply to the base; the message is one line naming the file.</exception>
    public static LoraAdapter Load(string directory, ICausalLanguageModel baseModel)
    {
        ArgumentNullException.ThrowIfNull(baseModel);
        string configPath = Path.Combine(directory, ConfigFileName);
        string weightsPath = Path.Combine(directory, WeightsFileName);
        if (!Directory.Exists(directory))
        {
            throw new CheckpointFormatException(directory, "missing: no such adapter directory");
        }
        if (!File.Exists(configPath))
        {
            throw new CheckpointFormatException(configPath, "missing: a PEFT adapter directory needs adapter_config.json");
        }
        AdaptableLayers layers = baseModel.AdaptableLayers;
        LoraSettings settings = ReadSettings(configPath, layers);
        if (!File.Exists(weightsPath))
        {
            string problem = File.Exists(Path.Combine(directory, PickledWeightsFileName))
                ? $"missing: only {PickledWeightsFileName} (pickle) is there; save the adapter with safe_serialization=True"
                : "missing: a PEFT adapter directory needs adapter_model.safetensors";
            throw new CheckpointFormatException(weightsPath, problem);
        }

        using SafetensorsFile file = SafetensorsFile.Open(weightsPath);
        var adapter = new LoraAdapter(layers, settings, baseModel.Dtype, baseModel.Device);
        try
        {
            CopyWeights(adapter, file, configPath);
            return adapter;
        }
        catch
        {
            adapter.Dispose();
            throw;
        }
    }

    private static IEnumerable<SafetensorsWriter.TensorToWrite> Tensors(LoraAdapter adapter)
    {
        string prefix = KeyPrefix(adapter.Model);
        foreach ((string name, Tensor weight) in adapter.state_dict())
        {
            using Tensor stored = weight.detach().to(ScalarType.Float32).cpu().contiguous();
            yield return new SafetensorsWriter.TensorToWrite(prefix + name, SafetensorsDtype.F32, stored.shape, stored.bytes.ToArray());
        }
    }

    private static string ConfigJson(LoraSettings settings, AdaptableLayers model, string baseModelNameOrPath)
    {
        var json = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModelNameOrPath,
            ["r"] = settings.Rank,
            ["lora_alpha"] = settings.Alpha,
            ["lora_dropout"] = 0.0,
            ["target_modules"] = new JsonArray(settings.TargetModules.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
            // GPT-2's Conv1D stores its weight (in, out); PEFT needs this to merge the update into it.
            ["fan_in_fan_out"] = model.FanInFanOut,
            ["bias"] = "none",
            ["use_rslora"] = settings.UseRsLora,
            ["use_dora"] = false,
            ["modules_to_save"] = null,
            ["init_lora_weights"] = true,
            ["layers_to_transform"] = null,
            ["layers_pattern"] = null,
            ["rank_pattern"] = new JsonObject(),
            ["alpha_pattern"] = new JsonObject(),
            ["inference_mode"] = true,
            ["revision"] = null,
        };
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>The base model adapter_config.json names (a served name or a directory), or null if it names none.</summary>
    public static string? BaseModelNameOrPath(string directory)
    {
        string configPath = Path.Combine(directory, ConfigFileName);
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(configPath));
            return document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("base_model_name_or_path", out JsonElement value)
                && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(configPath, $"not valid JSON ({e.Message})");
        }
    }

    /// <summary>adapter_config.json as settings, refusing every PEFT option that would change the forward pass in a way this server does not implement.</summary>
    private static LoraSettings ReadSettings(string configPath, AdaptableLayers baseLayers)
    {
        JsonElement root;
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(configPath));
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(configPath, $"not valid JSON ({e.Message})");
        }
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointFormatException(configPath, "not a JSON object");
        }

        string? peftType = OptionalString(root, "peft_type", configPath);
        if (peftType != "LORA")
        {
            throw new CheckpointFormatException(configPath, $"peft_type is {Describe(peftType)}; only LORA adapters are supported");
        }
        // PEFT's LoraConfig defaults for fields an older or hand-written config leaves out.
        int rank = OptionalInt(root, "r", configPath) ?? 8;
        double alpha = OptionalDouble(root, "lora_alpha", configPath) ?? 8;
        bool useRsLora = OptionalBool(root, "use_rslora", configPath) ?? false;
        string bias = OptionalString(root, "bias", configPath) ?? "none";
        if (bias != "none")
        {
            throw new CheckpointFormatException(configPath, $"bias is \"{bias}\"; only adapters without trained biases (\"none\") are supported");
        }
        if (OptionalBool(root, "use_dora", configPath) == true)
        {
            throw new CheckpointFormatException(configPath, "use_dora is true; DoRA adapters are not supported");
        }
        RequireAbsent(root, "modules_to_save", configPath, "modules_to_save lists fully trained modules; only pure LoRA adapters are supported");
        RequireAbsent(root, "layers_to_transform", configPath, "layers_to_transform is set; only adapters on every layer are supported (name single layers in target_modules instead)");
        RequireAbsent(root, "rank_pattern", configPath, "rank_pattern is set; only one rank for every layer is supported");
        RequireAbsent(root, "alpha_pattern", configPath, "alpha_pattern is set; only one lora_alpha for every layer is supported");
        // Newer PEFT options that change which layers are adapted or what an adapted layer computes.
        if (OptionalBool(root, "lora_bias", configPath) == true)
        {
            throw new CheckpointFormatException(configPath, "lora_bias is true; only adapters without a bias on lora_B are supported");
        }
        RequireAbsent(root, "exclude_modules", configPath, "exclude_modules is set; name the adapted modules in target_modules instead");
        RequireAbsent(root, "layer_replication", configPath, "layer_replication is set; only adapters on the base's own layers are supported");
        RequireAbsent(root, "trainable_token_indices", configPath, "trainable_token_indices is set; only pure LoRA adapters are supported");
        RequireAbsent(root, "target_parameters", configPath, "target_parameters is set; only adapters on whole linear layers (target_modules) are supported");

        if (!root.TryGetProperty("target_modules", out JsonElement targets) || targets.ValueKind != JsonValueKind.Array)
        {
            string problem = targets.ValueKind == JsonValueKind.String
                ? "target_modules is a regular expression; only a list of module names is supported"
                : "target_modules must be a list of module names";
            throw new CheckpointFormatException(configPath, problem);
        }
        var targetModules = new List<string>();
        foreach (JsonElement target in targets.EnumerateArray())
        {
            if (target.ValueKind != JsonValueKind.String)
            {
                throw new CheckpointFormatException(configPath, "target_modules must be a list of module names");
            }
            targetModules.Add(target.GetString()!);
        }

        var settings = new LoraSettings(rank, alpha, targetModules, useRsLora);
        try
        {
            settings.TargetedPaths(baseLayers);
        }
        catch (ArgumentException e)
        {
            throw new CheckpointFormatException(configPath, e.Message.Split(" (Parameter")[0]);
        }
        return settings;
    }

    private static void CopyWeights(LoraAdapter adapter, SafetensorsFile file, string configPath)
    {
        string prefix = KeyPrefix(adapter.Model);
        var expected = adapter.state_dict().ToDictionary(entry => prefix + entry.Key, entry => entry.Value, StringComparer.Ordinal);
        foreach (string stored in file.Tensors.Keys)
        {
            if (!expected.ContainsKey(stored))
            {
                throw new CheckpointFormatException(file.Path,
                    $"unexpected tensor '{stored}': adapter_config.json's target_modules do not cover it, or it is not a LoRA weight of a {adapter.Model.Architecture} layer");
            }
        }
        int rank = adapter.Settings.Rank;
        foreach ((string key, Tensor weight) in expected)
        {
            if (!file.Tensors.TryGetValue(key, out SafetensorsTensorInfo? info))
            {
                throw new CheckpointFormatException(file.Path, $"tensor '{key}' is missing (adapter_config.json's target_modules include its layer)");
            }
            if (!info.Shape.SequenceEqual(weight.shape))
            {
                bool isA = key.EndsWith(".lora_A.weight", StringComparison.Ordinal);
                long storedRank = info.Shape.Length == 2 ? (isA ? info.Shape[0] : info.Shape[1]) : -1;
                string problem = storedRank >= 0 && storedRank != rank
                    ? $"tensor '{key}' has rank {storedRank} (shape [{string.Join(", ", info.Shape)}]) but {Path.GetFileName(configPath)} says r = {rank}"
                    : $"tensor '{key}' has shape [{string.Join(", ", info.Shape)}] but the base model's layer needs [{string.Join(", ", weight.shape)}]";
                throw new CheckpointFormatException(file.Path, problem);
            }
            CheckpointLoader.CopyStoredTensor(file, info, weight);
        }
    }

    private static void RequireAbsent(JsonElement root, string name, string configPath, string problem)
    {
        if (!root.TryGetProperty(name, out JsonElement value))
        {
            return;
        }
        bool empty = value.ValueKind switch
        {
            JsonValueKind.Null => true,
            JsonValueKind.Array => value.GetArrayLength() == 0,
            JsonValueKind.Object => !value.EnumerateObject().Any(),
            _ => false,
        };
        if (!empty)
        {
            throw new CheckpointFormatException(configPath, problem);
        }
    }

    private static string? OptionalString(JsonElement root, string name, string configPath) =>
        Optional(root, name, configPath, JsonValueKind.String, "a string", v => v.GetString());

    private static bool? OptionalBool(JsonElement root, string name, string configPath)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new CheckpointFormatException(configPath, $"{name} must be true or false"),
        };
    }

    private static int? OptionalInt(JsonElement root, string name, string configPath) =>
        Optional<int?>(root, name, configPath, JsonValueKind.Number, "an integer",
            v => v.TryGetInt32(out int i) ? i : throw new CheckpointFormatException(configPath, $"{name} must be an integer"));

    private static double? OptionalDouble(JsonElement root, string name, string configPath) =>
        Optional<double?>(root, name, configPath, JsonValueKind.Number, "a number", v => v.GetDouble());

    private static T? Optional<T>(JsonElement root, string name, string configPath, JsonValueKind kind, string kindName, Func<JsonElement, T> read)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return default;
        }
        if (value.ValueKind != kind)
        {
            throw new CheckpointFormatException(configPath, $"{name} must be {kindName}");
        }
        return read(value);
    }

    private static string Describe(string? value) => value is null ? "missing" : $"\"{value}\"";
}
