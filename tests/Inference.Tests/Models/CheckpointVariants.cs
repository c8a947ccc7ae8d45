using System.Text.Json.Nodes;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Safetensors;
using TorchSharp;
using static TorchSharp.torch;
using TensorToWrite = LlmServer.Inference.Models.Safetensors.SafetensorsWriter.TensorToWrite;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// Checkpoint directories rebuilt from a fixture model with one thing changed (the tensors, their
/// layout in shards, config.json), for the loader tests of every architecture. Deleted on dispose.
/// </summary>
public sealed class CheckpointVariants : IDisposable
{
    public const string FirstShard = "model-00001-of-00002.safetensors";
    public const string SecondShard = "model-00002-of-00002.safetensors";
    public const string ShardIndex = "model.safetensors.index.json";
    private readonly string _root = Directory.CreateTempSubdirectory("checkpoint-variants-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    public static List<TensorToWrite> ReadTensors(string fixture)
    {
        using SafetensorsFile file = SafetensorsFile.Open(Path.Combine(TestFixtures.ModelDirectory(fixture), "model.safetensors"));
        return file.Tensors.Values.Select(t => new TensorToWrite(t.Name, t.Dtype, t.Shape, file.GetBytes(t).ToArray())).ToList();
    }

    /// <summary>A directory with the fixture's config.json (edited) and every file published beside the weights, but no weights.</summary>
    public string CopyConfig(string fixture, string name, Action<JsonObject>? editConfig = null)
    {
        string source = TestFixtures.ModelDirectory(fixture);
        string directory = Path.Combine(_root, name);
        Directory.CreateDirectory(directory);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString());
        foreach (string file in Directory.GetFiles(source).Select(Path.GetFileName).OfType<string>()
            .Where(f => f is not ("config.json" or "model.safetensors" or "reference.json")))
        {
            File.Copy(Path.Combine(source, file), Path.Combine(directory, file));
        }
        return directory;
    }

    /// <summary>The fixture's tensors, changed by <paramref name="transform"/>, in one model.safetensors.</summary>
    public string WriteVariant(string fixture, string name, Func<IEnumerable<TensorToWrite>, IEnumerable<TensorToWrite>> transform,
        Action<JsonObject>? editConfig = null) =>
        WriteSingle(fixture, name, transform(ReadTensors(fixture)), editConfig);

    public string WriteSingle(string fixture, string name, IEnumerable<TensorToWrite> tensors, Action<JsonObject>? editConfig = null)
    {
        string directory = CopyConfig(fixture, name, editConfig);
        SafetensorsWriter.Write(Path.Combine(directory, "model.safetensors"), tensors.ToList(), new Dictionary<string, string> { ["format"] = "pt" });
        return directory;
    }

    /// <summary>Two shards and their index, as transformers' save_pretrained splits them: tensors in name order, each in one shard.</summary>
    public string WriteShards(string fixture, string name, List<TensorToWrite> tensors, Action<JsonObject>? editConfig = null)
    {
        string directory = CopyConfig(fixture, name, editConfig);
        SafetensorsWriter.Write(Path.Combine(directory, FirstShard), FirstHalf(tensors), new Dictionary<string, string> { ["format"] = "pt" });
        SafetensorsWriter.Write(Path.Combine(directory, SecondShard), SecondHalf(tensors), new Dictionary<string, string> { ["format"] = "pt" });
        var weightMap = new JsonObject();
        foreach (TensorToWrite tensor in tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            weightMap[tensor.Name] = ShardOf(tensors, tensor.Name);
        }
        long totalSize = tensors.Sum(t => (long)t.Data.Length);
        File.WriteAllText(Path.Combine(directory, ShardIndex),
            new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = totalSize }, ["weight_map"] = weightMap }.ToJsonString());
        return directory;
    }

    public static string ShardOf(List<TensorToWrite> tensors, string name) =>
        FirstHalf(tensors).Any(t => t.Name == name) ? FirstShard : SecondShard;

    public static IEnumerable<TensorToWrite> FirstHalf(List<TensorToWrite> tensors) =>
        tensors.OrderBy(t => t.Name, StringComparer.Ordinal).Take(tensors.Count / 2);

    public static IEnumerable<TensorToWrite> SecondHalf(List<TensorToWrite> tensors) =>
        tensors.OrderBy(t => t.Name, StringComparer.Ordinal).Skip(tensors.Count / 2);

    public static void AssertOneLine(CheckpointFormatException error, string path, string problem)
    {
        Assert.DoesNotContain('\n', error.Message);
        Assert.StartsWith(path + ": ", error.Message);
        Assert.Contains(problem, error.Message);
    }

    /// <summary>The variant computes the fixture's logits over <paramref name="probe"/>, to within <paramref name="tolerance"/>, with the same argmax.</summary>
    public static void AssertSameLogits(string fixture, string directory, long[] probe, double tolerance = 0)
    {
        using var scope = NewDisposeScope();
        using var noGrad = torch.no_grad();
        using ICausalLanguageModel expected = ModelArchitectures.Load(TestFixtures.ModelDirectory(fixture), ScalarType.Float32, CPU);
        using ICausalLanguageModel actual = ModelArchitectures.Load(directory, ScalarType.Float32, CPU);
        Tensor ids = tensor(probe).unsqueeze(0);                                          // (1, T)
        Tensor want = expected.ForwardTraining(ids);                                      // (1, T, V)
        Tensor got = actual.ForwardTraining(ids);                                         // (1, T, V)
        double difference = (want - got).abs().max().item<float>();
        Assert.True(difference <= tolerance, $"logits differ from the fixture's by {difference} (allowed {tolerance})");
        Assert.Equal(want.argmax(-1).data<long>().ToArray(), got.argmax(-1).data<long>().ToArray());
    }
}
