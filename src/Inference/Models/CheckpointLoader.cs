using System.Text.Json;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// Maps a Hugging Face GPT-2 directory onto a <see cref="Gpt2Model"/>. The model's own state_dict
/// names the tensors it needs; the checkpoint may spell them with or without "transformer.", keep
/// attention-mask buffers, store any float dtype, and be split into shards.
/// </summary>
public static class CheckpointLoader
{
    private const string SingleFileName = "model.safetensors";
    private const string ShardIndexName = "model.safetensors.index.json";
    private const string HeadKey = "lm_head.weight";
    private const string TokenEmbeddingKey = "wte.weight";

    public static Gpt2Model Load(string directory, ScalarType dtype, Device device)
    {
        if (!Directory.Exists(directory))
        {
            throw new CheckpointFormatException(directory, "missing: no such model directory");
        }
        Gpt2Config config = Gpt2Config.Load(Path.Combine(directory, "config.json"));
        List<SafetensorsFile> files = OpenWeightFiles(directory);
        try
        {
            Dictionary<string, (SafetensorsFile File, SafetensorsTensorInfo Tensor)> stored = IndexTensors(files);
            bool separateHead = stored.TryGetValue(HeadKey, out var head)
                && !(stored.TryGetValue(TokenEmbeddingKey, out var embedding) && SameBytes(head, embedding));
            var model = new Gpt2Model(config, dtype, device, separateHead);
            try
            {
                CopyWeights(model, stored);
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

    /// <summary>
    /// model.safetensors, or every shard model.safetensors.index.json names. A shard the index names
    /// must exist and hold every tensor the index puts in it, so that a half-finished download or a
    /// stale index is one line naming the shard rather than a tensor missing somewhere.
    /// </summary>
    internal static List<SafetensorsFile> OpenWeightFiles(string directory)
    {
        string single = Path.Combine(directory, SingleFileName);
        string index = Path.Combine(directory, ShardIndexName);
        if (File.Exists(single))
        {
            return [SafetensorsFile.Open(single)];
        }
        if (!File.Exists(index))
        {
            // Older repositories publish only PyTorch's pickles, which a server should not unpickle.
            string? pickle = new[] { "pytorch_model.bin", "pytorch_model.bin.index.json" }.FirstOrDefault(name => File.Exists(Path.Combine(directory, name)));
            throw new CheckpointFormatException(single, pickle is null
                ? $"missing: neither {SingleFileName} nor {ShardIndexName} is in the model directory"
                : $"missing: the directory has only {pickle} (PyTorch pickle), which is not read; convert it to safetensors (transformers' save_pretrained writes them)");
        }
        var files = new List<SafetensorsFile>();
        try
        {
            foreach (IGrouping<string, string> shard in ReadWeightMap(index).GroupBy(entry => entry.Value, entry => entry.Key).OrderBy(g => g.Key, StringComparer.Ordinal))
            {
                string shardPath = Path.Combine(directory, shard.Key);
                if (!File.Exists(shardPath))
                {
                    throw new CheckpointFormatException(shardPath, $"missing: {ShardIndexName} names this shard but there is no such file");
                }
                SafetensorsFile file = SafetensorsFile.Open(shardPath);
                files.Add(file);
                string? absent = shard.FirstOrDefault(name => !file.Tensors.ContainsKey(name));
                if (absent is not null)
                {
                    throw new CheckpointFormatException(shardPath, $"tensor '{absent}' is missing, though {ShardIndexName} puts it in this shard");
                }
            }
        }
        catch
        {
            files.ForEach(f => f.Dispose());
            throw;
        }
        return files;
    }

    /// <summary>The index's weight_map: tensor name to shard file name.</summary>
    private static Dictionary<string, string> ReadWeightMap(string indexPath)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(indexPath));
            if (document.RootElement.ValueKind != JsonValueKind.Object
                || !document.RootElement.TryGetProperty("weight_map", out JsonElement weightMap) || weightMap.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(indexPath, "no \"weight_map\" object");
            }
            var shards = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in weightMap.EnumerateObject())
            {
                string shard = entry.Value.ValueKind == JsonValueKind.String && entry.Value.GetString() is { Length: > 0 } name
                    ? name
                    : throw new CheckpointFormatException(indexPath, $"weight_map entry '{entry.Name}' is not a file name");
                if (shard.Contains('/') || shard.Contains('\\') || shard.Contains(".."))
                {
                    throw new CheckpointFormatException(indexPath, $"weight_map entry '{entry.Name}' points outside the model directory");
                }
                shards[entry.Name] = shard;
            }
            if (shards.Count == 0)
            {
                throw new CheckpointFormatException(indexPath, "weight_map names no tensors");
            }
            return shards;
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(indexPath, $"not valid JSON ({e.Message})");
        }
    }

    /// <summary>Stored tensors under the model's own names; buffers that transformers regenerates are dropped.</summary>
    private static Dictionary<string, (SafetensorsFile, SafetensorsTensorInfo)> IndexTensors(List<SafetensorsFile> files)
    {
        var byName = new Dictionary<string, (SafetensorsFile, SafetensorsTensorInfo)>(StringComparer.Ordinal);
        foreach (SafetensorsFile file in files)
        {
            foreach ((string storedName, SafetensorsTensorInfo tensor) in file.Tensors)
            {
                string name = storedName.StartsWith("transformer.", StringComparison.Ordinal) ? storedName["transformer.".Length..] : storedName;
                if (name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal))
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

    private static void CopyWeights(Gpt2Model model, Dictionary<string, (SafetensorsFile File, SafetensorsTensorInfo Tensor)> stored)
    {
        using var noGrad = torch.no_grad();
        foreach ((string name, Tensor parameter) in model.state_dict())
        {
            if (!stored.TryGetValue(name, out var source))
            {
                string where = string.Join(", ", stored.Values.Select(s => s.File.Path).Distinct());
                throw new CheckpointFormatException(where, $"tensor '{name}' (or 'transformer.{name}') is missing");
            }
            SafetensorsTensorInfo info = source.Tensor;
            if (!info.Shape.SequenceEqual(parameter.shape))
            {
                throw new CheckpointFormatException(source.File.Path,
                    $"tensor '{info.Name}' has shape [{string.Join(", ", info.Shape)}] but config.json implies [{string.Join(", ", parameter.shape)}]");
            }
            CopyStoredTensor(source.File, info, parameter);
        }
    }

    /// <summary>Copies a float tensor of a safetensors file into <paramref name="destination"/> (same shape, any float dtype and device).</summary>
    internal static void CopyStoredTensor(SafetensorsFile file, SafetensorsTensorInfo info, Tensor destination)
    {
        ScalarType storedType = info.Dtype switch
        {
            SafetensorsDtype.F32 => ScalarType.Float32,
            SafetensorsDtype.F16 => ScalarType.Float16,
            SafetensorsDtype.BF16 => ScalarType.BFloat16,
            _ => throw new CheckpointFormatException(file.Path,
                $"tensor '{info.Name}' is {info.Dtype}; weights must be F32, F16 or BF16"),
        };
        // One copy out of the mapped file into a CPU tensor of the stored type; copy_ then
        // converts to the serving dtype and moves to the device in the same step.
        using Tensor staging = empty(info.Shape, storedType, CPU);
        if (info.ByteLength > 0)
        {
            staging.bytes = MemoryMarshalSpan(file.GetBytes(info));
        }
        using var noGrad = torch.no_grad();
        destination.copy_(staging);
    }

    private static Span<byte> MemoryMarshalSpan(ReadOnlySpan<byte> bytes) =>
        System.Runtime.InteropServices.MemoryMarshal.CreateSpan(
            ref System.Runtime.InteropServices.MemoryMarshal.GetReference(bytes), bytes.Length);

    private static bool SameBytes((SafetensorsFile File, SafetensorsTensorInfo Tensor) a, (SafetensorsFile File, SafetensorsTensorInfo Tensor) b) =>
        a.Tensor.Dtype == b.Tensor.Dtype && a.Tensor.Shape.SequenceEqual(b.Tensor.Shape)
        && a.File.GetBytes(a.Tensor).SequenceEqual(b.File.GetBytes(b.Tensor));
}
