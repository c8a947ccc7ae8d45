using System.Text.Json.Nodes;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tests.Engine;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using TensorToWrite = LlmServer.Inference.Models.Safetensors.SafetensorsWriter.TensorToWrite;

namespace LlmServer.Inference.Tests.Models.Lora;

/// <summary>
/// LoRA on a Llama-architecture base (the llama3 fixture): adapters use PEFT's names
/// (q_proj ... down_proj, keys "base_model.model.model.layers.N..."), a directory laid out as PEFT
/// writes it loads into the engine, and what it serves is the base plus scale * B A x, computed
/// here independently by merging B A into a copy of the base's weights.
/// </summary>
public sealed class LlamaPeftAdapterTests : IDisposable
{
    private const string Fixture = "llama3-random-2l-64d";
    private static readonly string[] Projections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
    private readonly string _root = Directory.CreateTempSubdirectory("llama-peft-tests-").FullName;
    private readonly ICausalLanguageModel _model = ModelArchitectures.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);

    public void Dispose()
    {
        _model.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    [Fact]
    public void Our_writer_uses_PEFTs_llama_keys_and_the_adapter_loads_back_bit_for_bit()
    {
        using LoraAdapter adapter = LoraAdapter.Create(_model.AdaptableLayers, new LoraSettings(4, 8, ["q_proj", "v_proj"]), ScalarType.Float32, CPU, new Generator(3));
        RandomizeB(adapter, seed: 4);
        string directory = Path.Combine(_root, "ours");
        PeftAdapterFiles.Save(adapter, directory, TestFixtures.ModelDirectory(Fixture));

        using (SafetensorsFile file = SafetensorsFile.Open(Path.Combine(directory, "adapter_model.safetensors")))
        {
            string[] expected = [.. from layer in new[] { 0, 1 }
                                     from module in new[] { "q_proj", "v_proj" }
                                     from matrix in new[] { "A", "B" }
                                     select $"base_model.model.model.layers.{layer}.self_attn.{module}.lora_{matrix}.weight"];
            Assert.Equal(expected.Order(), file.Tensors.Keys.Order());
            // q: 4 heads of 16; v: 2 KV heads of 16 (grouped-query attention).
            Assert.Equal([4L, 64], file.Tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"].Shape);
            Assert.Equal([64L, 4], file.Tensors["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"].Shape);
            Assert.Equal([32L, 4], file.Tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"].Shape);
        }
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(directory, "adapter_config.json")))!.AsObject();
        Assert.Equal(["q_proj", "v_proj"], config["target_modules"]!.AsArray().Select(t => (string?)t));
        Assert.False((bool)config["fan_in_fan_out"]!);

        using LoraAdapter loaded = PeftAdapterFiles.Load(directory, _model);
        Assert.Equal(adapter.Layers.Keys, loaded.Layers.Keys);
        foreach ((string path, LoraLayer layer) in adapter.Layers)
        {
            Assert.True(layer.A.allclose(loaded.Layers[path].A, rtol: 0, atol: 0), path);
            Assert.True(layer.B.allclose(loaded.Layers[path].B, rtol: 0, atol: 0), path);
        }
    }

    [Fact]
    public async Task A_PEFT_written_directory_serves_base_plus_scale_B_A_x_in_a_batch_with_the_base()
    {
        // r = 4, alpha = 8: scale 2. Weights as PEFT saves a bfloat16 model's adapter.
        string directory = WritePeftDirectory(rank: 4, alpha: 8, seed: 11);
        using LoraAdapter adapter = PeftAdapterFiles.Load(directory, _model);
        Assert.Equal(14, adapter.Layers.Count);
        Assert.All(adapter.Layers.Values, layer => Assert.True(layer.B.abs().sum().item<float>() > 0));

        ReferenceCase reference = ReferenceCase.Load(Fixture)[0];
        int steps = Math.Min(12, reference.GreedyIds.Length);
        using ICausalLanguageModel merged = MergedCopy(adapter, scale: 2.0);
        (int[] mergedIds, double[] mergedLogprobs) = Greedy(merged, reference.PromptIds, steps, routing: null);
        using (AdapterRouting routing = AdapterRouting.ForAllRows(adapter))
        {
            // The training forward with the adapter routed is the merged model's.
            (int[] trainedIds, double[] trainedLogprobs) = Greedy(_model, reference.PromptIds, steps, routing);
            Assert.Equal(mergedIds, trainedIds);
            Assert.All(mergedLogprobs.Zip(trainedLogprobs), pair => Assert.InRange(pair.Second, pair.First - 1e-4, pair.First + 1e-4));
        }
        Assert.NotEqual(reference.GreedyIds[..steps], mergedIds);

        await using EngineClient engine = EngineFactory.Start(Fixture);
        await engine.Ready;
        ServedModel served = await engine.LoadModelAsync("peft-adapter", directory, baseName: Fixture);
        Assert.Equal(ServedModelKind.Adapter, served.Kind);
        Assert.Equal(Fixture, served.Parent);

        (int[] Ids, double[] Logprobs)[] runs = await Task.WhenAll(Enumerable.Range(0, 6)
            .Select(i => RunAsync(engine, i % 2 == 0 ? null : "peft-adapter", reference.PromptIds, steps, $"r{i}")));
        for (int i = 0; i < runs.Length; i++)
        {
            if (i % 2 == 0)
            {
                Assert.Equal(reference.GreedyIds[..steps], runs[i].Ids);
                continue;
            }
            Assert.Equal(mergedIds, runs[i].Ids);
            Assert.All(mergedLogprobs.Zip(runs[i].Logprobs), pair => Assert.InRange(pair.Second, pair.First - 1e-3, pair.First + 1e-3));
        }
    }

    [Fact]
    public void A_PEFT_directory_for_another_architecture_is_refused_in_one_line()
    {
        string directory = WritePeftDirectory(rank: 4, alpha: 8, seed: 1, targets: ["c_attn"]);
        var error = Assert.Throws<CheckpointFormatException>(() => PeftAdapterFiles.Load(directory, _model));
        Assert.Contains("adapter_config.json", error.Message);
        Assert.Contains("'c_attn' matches no layer of this 2-layer LlamaForCausalLM", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    /// <summary>
    /// adapter_config.json with the fields PEFT 0.13 writes for a LlamaForCausalLM (a target set in
    /// its own order, dropout, the newer options at their defaults) and bfloat16 A and B with PEFT's keys.
    /// </summary>
    private string WritePeftDirectory(int rank, double alpha, long seed, string[]? targets = null)
    {
        string directory = Path.Combine(_root, $"peft-{seed}");
        Directory.CreateDirectory(directory);
        targets ??= ["v_proj", "down_proj", "q_proj", "gate_proj", "o_proj", "up_proj", "k_proj"];
        var config = new JsonObject
        {
            ["alpha_pattern"] = new JsonObject(),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = "meta-llama/Llama-3.2-1B-Instruct",
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["layer_replication"] = null,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["loftq_config"] = new JsonObject(),
            ["lora_alpha"] = alpha,
            ["lora_dropout"] = 0.05,
            ["megatron_config"] = null,
            ["megatron_core"] = "megatron.core",
            ["modules_to_save"] = null,
            ["peft_type"] = "LORA",
            ["r"] = rank,
            ["rank_pattern"] = new JsonObject(),
            ["revision"] = null,
            ["target_modules"] = new JsonArray(targets.Select(t => (JsonNode?)JsonValue.Create(t)).ToArray()),
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = false,
        };
        File.WriteAllText(Path.Combine(directory, "adapter_config.json"), config.ToJsonString());

        var generator = new Generator((ulong)seed);
        var tensors = new List<TensorToWrite>();
        foreach (AdaptableLayer layer in _model.AdaptableLayers.Layers.Where(l => Projections.Any(p => l.ModulePath.EndsWith("." + p, StringComparison.Ordinal))))
        {
            string key = "base_model.model." + layer.ModulePath;
            using Tensor a = randn([rank, layer.Inputs], generator: generator).mul_(0.3).to(ScalarType.BFloat16);
            using Tensor b = randn([layer.Outputs, rank], generator: generator).mul_(0.3).to(ScalarType.BFloat16);
            tensors.Add(new TensorToWrite(key + ".lora_A.weight", SafetensorsDtype.BF16, a.shape, a.bytes.ToArray()));
            tensors.Add(new TensorToWrite(key + ".lora_B.weight", SafetensorsDtype.BF16, b.shape, b.bytes.ToArray()));
        }
        SafetensorsWriter.Write(Path.Combine(directory, "adapter_model.safetensors"), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return directory;
    }

    /// <summary>The base with every adapted nn.Linear's weight (out, in) replaced by W + scale * B A.</summary>
    private static ICausalLanguageModel MergedCopy(LoraAdapter adapter, double scale)
    {
        ICausalLanguageModel merged = ModelArchitectures.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);
        var weights = ((nn.Module)merged).named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using var noGrad = no_grad();
        foreach ((string path, LoraLayer layer) in adapter.Layers)
        {
            using Tensor update = layer.B.matmul(layer.A);                               // (out, in)
            weights[path + ".weight"].add_(update, scale);
        }
        return merged;
    }

    /// <summary>Greedy decoding by whole-sequence forwards: each step's argmax and its log-probability.</summary>
    private static (int[] Ids, double[] Logprobs) Greedy(ICausalLanguageModel model, int[] prompt, int steps, AdapterRouting? routing)
    {
        using var noGrad = no_grad();
        var ids = prompt.Select(id => (long)id).ToList();
        var chosen = new List<int>();
        var logprobs = new List<double>();
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            Tensor input = tensor(ids.ToArray()).unsqueeze(0);                           // (1, T)
            Tensor logits = model.ForwardTraining(input, routing);                       // (1, T, V)
            Tensor last = logits[0, -1].log_softmax(-1);                                 // (V)
            int next = (int)last.argmax().item<long>();
            chosen.Add(next);
            logprobs.Add(last[next].item<float>());
            ids.Add(next);
        }
        return (chosen.ToArray(), logprobs.ToArray());
    }

    private static async Task<(int[] Ids, double[] Logprobs)> RunAsync(IEngineClient engine, string? model, int[] prompt, int steps, string id)
    {
        int? weights = model is null ? null : engine.Models.Resolve(model)!.WeightsId;
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = steps, IgnoreEos = true, Logprobs = 1 };
        var ids = new List<int>();
        var logprobs = new List<double>();
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission(id, prompt, sampling, weights)))
        {
            Assert.NotEqual(FinishReason.Error, generated.FinishReason);
            ids.AddRange(generated.Tokens.Select(t => t.TokenId));
            logprobs.AddRange(generated.Tokens.Select(t => (double)t.Logprob!.Value));
        }
        return (ids.ToArray(), logprobs.ToArray());
    }

    private static void RandomizeB(LoraAdapter adapter, long seed)
    {
        var generator = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (LoraLayer layer in adapter.Layers.Values)
        {
            using Tensor noise = randn(layer.B.shape, generator: generator);
            layer.B.copy_(noise);
        }
    }
}
