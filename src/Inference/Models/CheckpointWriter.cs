using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Safetensors;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// Saves a <see cref="Gpt2Model"/> as a Hugging Face GPT-2 directory that transformers (and this
/// server) load: config.json, model.safetensors with "transformer."-prefixed keys as
/// GPT2LMHeadModel writes them, and the tokenizer files. The directory appears whole or not at
/// all: everything is written to a sibling folder that is renamed into place last.
/// </summary>
public static class CheckpointWriter
{
    private static readonly string[] TokenizerFiles = ["vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"];

    public static void Save(Gpt2Model model, string directory, string tokenizerDirectory, ScalarType storeAs = ScalarType.Float32) =>
        WholeDirectory.Write(directory, staging => WriteInto(staging, model, tokenizerDirectory, storeAs));

    /// <summary>Writes the model's files into an existing directory that the caller makes appear whole.</summary>
    public static void WriteInto(string directory, Gpt2Model model, string tokenizerDirectory, ScalarType storeAs = ScalarType.Float32)
    {
        File.WriteAllText(Path.Combine(directory, "config.json"), ConfigJson(model.Config, storeAs));
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), Tensors(model, storeAs),
            new Dictionary<string, string> { ["format"] = "pt" });
        foreach (string file in TokenizerFiles)
        {
            string source = Path.Combine(tokenizerDirectory, file);
            if (File.Exists(source))
            {
                File.Copy(source, Path.Combine(directory, file));
            }
        }
    }

    private static IEnumerable<SafetensorsWriter.TensorToWrite> Tensors(Gpt2Model model, ScalarType storeAs)
    {
        SafetensorsDtype dtype = storeAs switch
        {
            ScalarType.Float32 => SafetensorsDtype.F32,
            ScalarType.Float16 => SafetensorsDtype.F16,
            ScalarType.BFloat16 => SafetensorsDtype.BF16,
            _ => throw new ArgumentOutOfRangeException(nameof(storeAs), storeAs, "checkpoints are stored as float32, float16 or bfloat16"),
        };
        foreach ((string name, Tensor parameter) in model.state_dict())
        {
            using Tensor stored = parameter.detach().to(storeAs).cpu().contiguous();
            string key = name.StartsWith("lm_head.", StringComparison.Ordinal) ? name : "transformer." + name;
            yield return new SafetensorsWriter.TensorToWrite(key, dtype, stored.shape, stored.bytes.ToArray());
        }
    }

    private static string ConfigJson(Gpt2Config config, ScalarType storeAs)
    {
        var json = JsonSerializer.SerializeToNode(config)!.AsObject();
        json["architectures"] = new JsonArray("GPT2LMHeadModel");
        json["n_ctx"] = config.MaxPositions;
        json["torch_dtype"] = storeAs switch { ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16", _ => "float32" };
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
