using System.Text.Json;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Models.Safetensors;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// The architectures this server runs, each a folder under Models/ and one entry here: which
/// config.json model_type and architectures name it, and how its checkpoint loads. A directory is
/// matched by model_type (what transformers' AutoConfig goes by), else by its first architecture.
/// </summary>
public static class ModelArchitectures
{
    private sealed record Architecture(string ModelType, string ClassName, Func<string, ScalarType, Device, ICausalLanguageModel> Load);

    private static readonly Architecture[] Known =
    [
        new("gpt2", "GPT2LMHeadModel", CheckpointLoader.Load),
        new("llama", "LlamaForCausalLM", LlamaCheckpointLoader.Load),
        new("mistral", "MistralForCausalLM", LlamaCheckpointLoader.Load),
        new("qwen2", "Qwen2ForCausalLM", LlamaCheckpointLoader.Load),
        new("qwen3", "Qwen3ForCausalLM", LlamaCheckpointLoader.Load),
    ];

    /// <summary>The architecture class names, for messages: "GPT2LMHeadModel, LlamaForCausalLM, ...".</summary>
    public static string Supported => string.Join(", ", Known.Select(a => a.ClassName));

    /// <summary>The class transformers names the architecture of <paramref name="modelType"/> by ("LlamaForCausalLM").</summary>
    public static string ClassNameOf(string modelType) =>
        Known.FirstOrDefault(a => a.ModelType == modelType)?.ClassName ?? throw new ArgumentException($"unknown model_type '{modelType}'", nameof(modelType));

    /// <summary>Loads whichever supported architecture the directory's config.json names.</summary>
    public static ICausalLanguageModel Load(string directory, ScalarType dtype, Device device)
    {
        if (!Directory.Exists(directory))
        {
            throw new CheckpointFormatException(directory, "missing: no such model directory");
        }
        return Find(Path.Combine(directory, "config.json")).Load(directory, dtype, device);
    }

    /// <summary>The model_type the directory's config.json resolves to ("gpt2", "llama", ...); one line naming the file if none.</summary>
    public static string ModelTypeOf(string directory) => Find(Path.Combine(directory, "config.json")).ModelType;

    private static Architecture Find(string configPath)
    {
        if (!File.Exists(configPath))
        {
            throw new CheckpointFormatException(configPath, "missing: a Hugging Face model directory needs config.json");
        }
        string? modelType = null;
        string? className = null;
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(configPath));
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(configPath, "not a JSON object");
            }
            if (root.TryGetProperty("model_type", out JsonElement type) && type.ValueKind == JsonValueKind.String)
            {
                modelType = type.GetString();
            }
            if (root.TryGetProperty("architectures", out JsonElement classes) && classes.ValueKind == JsonValueKind.Array && classes.GetArrayLength() > 0)
            {
                className = classes[0].GetString();
            }
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(configPath, $"not valid JSON ({e.Message})");
        }
        Architecture? found = modelType is not null
            ? Known.FirstOrDefault(a => a.ModelType == modelType)
            : Known.FirstOrDefault(a => a.ClassName == className);
        // GPT-2 configs written before model_type existed name neither; GPT-2 was the only architecture then.
        if (modelType is null && className is null)
        {
            found = Known[0];
        }
        return found ?? throw new CheckpointFormatException(configPath,
            $"unsupported architecture '{className ?? modelType}'{(modelType is null ? "" : $" (model_type '{modelType}')")}; supported: {Supported}");
    }
}
