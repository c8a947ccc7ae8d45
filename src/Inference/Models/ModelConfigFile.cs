using System.Text.Json;
using LlmServer.Inference.Models.Safetensors;

namespace LlmServer.Inference.Models;

/// <summary>Reads a checkpoint's config.json into an architecture's config record; every problem is one line naming the file.</summary>
public static class ModelConfigFile
{
    /// <param name="requiredKeys">Keys without which the file does not describe a network; named when absent.</param>
    /// <param name="architecture">Names the family in the message about missing keys ("a qwen2 config.json needs ...").</param>
    public static T Read<T>(string configPath, IReadOnlyList<string> requiredKeys, string architecture) where T : class
    {
        if (!File.Exists(configPath))
        {
            throw new CheckpointFormatException(configPath, "missing: a Hugging Face model directory needs config.json");
        }
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(configPath));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(configPath, "not a JSON object");
            }
            string[] absent = requiredKeys.Where(key => !document.RootElement.TryGetProperty(key, out _)).ToArray();
            if (absent.Length > 0)
            {
                string owner = document.RootElement.TryGetProperty("model_type", out JsonElement type) && type.ValueKind == JsonValueKind.String
                    ? type.GetString()!
                    : architecture;
                throw new CheckpointFormatException(configPath, $"{string.Join(", ", absent)} missing; a {owner} config.json needs {string.Join(", ", requiredKeys)}");
            }
            return document.Deserialize<T>() ?? throw new CheckpointFormatException(configPath, "not a JSON object");
        }
        catch (JsonException e) when (e.Path is { Length: > 1 })
        {
            // A value of the wrong kind ("num_hidden_layers": "24"): name the key, not the parser's internals.
            throw new CheckpointFormatException(configPath, $"{e.Path.TrimStart('$', '.')} has a value of the wrong type ({e.Message})");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(configPath, $"not valid JSON ({e.Message})");
        }
    }
}
