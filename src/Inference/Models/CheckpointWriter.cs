using System.Text.Json;
using LlmServer.Inference.Models.Safetensors;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// Saves a model as the Hugging Face directory its architecture publishes, which transformers (and
/// this server) load: config.json, model.safetensors under the checkpoint's own keys, and the
/// tokenizer files. The directory appears whole or not at all: everything is written to a sibling
/// folder that is renamed into place last.
/// </summary>
public static class CheckpointWriter
{
    // GPT-2's vocab.json + merges.txt, or the tokenizer.json the Llama family uses, and what goes with them.
    private static readonly string[] TokenizerFiles =
        ["vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

    public static void Save(ICausalLanguageModel model, string directory, string tokenizerDirectory, ScalarType storeAs = ScalarType.Float32) =>
        WholeDirectory.Write(directory, staging => WriteInto(staging, model, tokenizerDirectory, storeAs));

    /// <summary>Writes the model's files into an existing directory that the caller makes appear whole.</summary>
    public static void WriteInto(string directory, ICausalLanguageModel model, string tokenizerDirectory, ScalarType storeAs = ScalarType.Float32)
    {
        var config = model.CheckpointConfig();
        config["torch_dtype"] = storeAs switch { ScalarType.Float16 => "float16", ScalarType.BFloat16 => "bfloat16", _ => "float32" };
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
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

    private static IEnumerable<SafetensorsWriter.TensorToWrite> Tensors(ICausalLanguageModel model, ScalarType storeAs)
    {
        SafetensorsDtype dtype = storeAs switch
        {
            ScalarType.Float32 => SafetensorsDtype.F32,
            ScalarType.Float16 => SafetensorsDtype.F16,
            ScalarType.BFloat16 => SafetensorsDtype.BF16,
            _ => throw new ArgumentOutOfRangeException(nameof(storeAs), storeAs, "checkpoints are stored as float32, float16 or bfloat16"),
        };
        foreach ((string key, Tensor weight) in model.CheckpointTensors())
        {
            using Tensor stored = weight.detach().to(storeAs).cpu().contiguous();
            yield return new SafetensorsWriter.TensorToWrite(key, dtype, stored.shape, stored.bytes.ToArray());
        }
    }
}
