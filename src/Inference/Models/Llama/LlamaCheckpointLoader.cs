using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Llama;

/// <summary>
/// Maps a Hugging Face Llama-family directory (config.json, model.safetensors or shards with
/// model.safetensors.index.json) onto a <see cref="LlamaModel"/>. The model's own state_dict names
/// the tensors it needs, which are the checkpoint's keys; any float dtype converts to the requested one.
/// </summary>
public static class LlamaCheckpointLoader
{
    private const string HeadKey = "lm_head.weight";

    public static LlamaModel Load(string directory, ScalarType dtype, Device device)
    {
        if (!Directory.Exists(directory))
        {
            throw new CheckpointFormatException(directory, "missing: no such model directory");
        }
        LlamaConfig config = LlamaConfig.Load(Path.Combine(directory, "config.json"));
        List<SafetensorsFile> files = CheckpointLoader.OpenWeightFiles(directory);
        try
        {
            Dictionary<string, (SafetensorsFile File, SafetensorsTensorInfo Tensor)> stored = IndexTensors(files);
            // As transformers: tie_word_embeddings decides. Tied, the model has no lm_head to fill
            // and a stored one is ignored; untied, it must be stored (missing, it is named like any tensor).
            var model = new LlamaModel(config, dtype, device, separateHead: !config.TieWordEmbeddings);
            try
            {
                CopyWeights(model, config, stored);
            }
            catch
            {
                model.Dispose();
                throw;
            }
            model.eval();
            return model;
        }
        finally
        {
            files.ForEach(f => f.Dispose());
        }
    }

    /// <summary>Stored tensors by name; rotary inv_freq buffers, which older checkpoints keep, are derived here instead.</summary>
    private static Dictionary<string, (SafetensorsFile, SafetensorsTensorInfo)> IndexTensors(List<SafetensorsFile> files)
    {
        var byName = new Dictionary<string, (SafetensorsFile, SafetensorsTensorInfo)>(StringComparer.Ordinal);
        foreach (SafetensorsFile file in files)
        {
            foreach ((string name, SafetensorsTensorInfo tensor) in file.Tensors)
            {
                if (name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal))
                {
                    continue;
                }
                if (!byName.TryAdd(name, (file, tensor)))
                {
                    throw new CheckpointFormatException(file.Path, $"tensor '{name}' is stored twice");
                }
            }
        }
        return byName;
    }

    /// <summary>Checks every tensor (missing, shape, no place in the network) before copying any, so a bad checkpoint fails before the slow part.</summary>
    private static void CopyWeights(LlamaModel model, LlamaConfig config, Dictionary<string, (SafetensorsFile File, SafetensorsTensorInfo Tensor)> stored)
    {
        using var noGrad = torch.no_grad();
        Dictionary<string, Tensor> parameters = model.state_dict();
        foreach ((string name, Tensor parameter) in parameters)
        {
            if (!stored.TryGetValue(name, out var source))
            {
                string where = string.Join(", ", stored.Values.Select(s => s.File.Path).Distinct());
                throw new CheckpointFormatException(where, $"tensor '{name}' is missing");
            }
            SafetensorsTensorInfo info = source.Tensor;
            if (!info.Shape.SequenceEqual(parameter.shape))
            {
                throw new CheckpointFormatException(source.File.Path,
                    $"tensor '{info.Name}' has shape [{string.Join(", ", info.Shape)}] but config.json implies [{string.Join(", ", parameter.shape)}]");
            }
        }
        // A weight the network has no place for means config.json describes another network (a Qwen2
        // checkpoint labelled llama would lose its q/k/v biases): transformers only warns, and the
        // replies would be quietly wrong. A stored head under tied embeddings is the one tolerated extra.
        foreach ((string name, var source) in stored)
        {
            if (!parameters.ContainsKey(name) && !(name == HeadKey && config.TieWordEmbeddings))
            {
                throw new CheckpointFormatException(source.File.Path,
                    $"tensor '{name}' has no place in the {config.ModelType} network config.json describes (another architecture, or a wrong attention_bias/head_dim/num_hidden_layers?)");
            }
        }
        foreach ((string name, Tensor parameter) in parameters)
        {
            var source = stored[name];
            CheckpointLoader.CopyStoredTensor(source.File, source.Tensor, parameter);
        }
    }
}
