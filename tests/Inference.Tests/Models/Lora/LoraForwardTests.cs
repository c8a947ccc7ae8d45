using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Layers;
using LlmServer.Inference.Models.Lora;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Lora;

/// <summary>
/// A LoRA adapter must act exactly as its merged weights W + scale (B A)ᵀ would, through the
/// serving path (packed products, paged cache, rows routed per adapter) and the training path alike.
/// </summary>
public sealed class LoraForwardTests : IDisposable
{
    private const string Fixture = "gpt2-random-2l-64d";
    private const float Tolerance = 1e-4f;
    private static readonly long[][] Prompts =
    [
        [15496, 11, 616, 1438, 318, 257, 3797],
        [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13, 383],
        [40, 588, 257],
    ];

    private readonly Gpt2Model _model = CheckpointLoader.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);

    public LoraForwardTests() => _model.PrepareForServing();

    public void Dispose() => _model.Dispose();

    [Fact]
    public void A_new_adapter_changes_no_output()
    {
        using LoraAdapter adapter = LoraAdapter.Create(_model.AdaptableLayers, AllModules(rank: 4), ScalarType.Float32, CPU, new Generator(1));

        List<Tensor> baseServed = ServingBatch.Logits(_model, Prompts, _ => null);
        List<Tensor> adapterServed = ServingBatch.Logits(_model, Prompts, spans => EveryRow(adapter, spans));
        for (int s = 0; s < Prompts.Length; s++)
        {
            Assert.Equal(0f, MaxDifference(baseServed[s], adapterServed[s]));
            using Tensor baseTrained = Train(Prompts[s], adapter: null);
            using Tensor adapterTrained = Train(Prompts[s], adapter);
            Assert.Equal(0f, MaxDifference(baseTrained, adapterTrained));
        }
        Dispose(baseServed, adapterServed);
    }

    [Fact]
    public void A_trained_adapter_serves_what_training_computes_and_what_merged_weights_give()
    {
        using LoraAdapter adapter = RandomAdapter(AllModules(rank: 4, alpha: 8), seed: 2);
        using Gpt2Model merged = MergedCopy(adapter);

        List<Tensor> served = ServingBatch.Logits(_model, Prompts, spans => EveryRow(adapter, spans));
        for (int s = 0; s < Prompts.Length; s++)
        {
            using Tensor trained = Train(Prompts[s], adapter);
            using Tensor reference = Train(Prompts[s], adapter: null, merged);
            using Tensor baseOnly = Train(Prompts[s], adapter: null);
            // The adapter must matter at all, or the comparisons below prove nothing.
            Assert.True(MaxDifference(reference, baseOnly) > 1e-2f, $"prompt {s}: the random adapter barely changes the logits");
            Assert.True(MaxDifference(trained, reference) < Tolerance, $"prompt {s}: training forward differs from merged weights by {MaxDifference(trained, reference)}");
            Assert.True(MaxDifference(served[s], reference) < Tolerance, $"prompt {s}: serving forward differs from merged weights by {MaxDifference(served[s], reference)}");
        }
        Dispose(served);
    }

    [Fact]
    public void Each_row_of_a_mixed_batch_gets_its_own_adapter_or_none()
    {
        using LoraAdapter first = RandomAdapter(AllModules(rank: 4, alpha: 8), seed: 3);
        using LoraAdapter second = RandomAdapter(new LoraSettings(8, 16, ["c_attn"]), seed: 4);
        LoraAdapter?[] chosen = [second, null, first];

        List<Tensor> mixed = ServingBatch.Logits(_model, Prompts, spans => AdapterRouting.ForRows(
            spans.Select((span, s) => (span, adapter: chosen[s]))
                .Where(x => x.adapter is not null)
                .Select(x => new AdapterSegment(x.adapter!, ServingBatch.Rows(x.span.FirstRow, x.span.RowCount)))
                .ToList()));

        for (int s = 0; s < Prompts.Length; s++)
        {
            LoraAdapter? adapter = chosen[s];
            List<Tensor> alone = ServingBatch.Logits(_model, [Prompts[s]], spans => adapter is null ? null : EveryRow(adapter, spans));
            using Tensor trained = Train(Prompts[s], adapter);
            Assert.True(MaxDifference(mixed[s], alone[0]) < Tolerance, $"prompt {s}: mixed batch differs from a batch of its adapter alone");
            Assert.True(MaxDifference(mixed[s], trained) < Tolerance, $"prompt {s}: mixed batch differs from the training forward");
            Dispose(alone);
        }
        Dispose(mixed);
    }

    [Fact]
    public void Training_an_adapter_puts_gradients_on_its_weights_only()
    {
        using LoraAdapter adapter = RandomAdapter(AllModules(rank: 2), seed: 5);
        foreach (Parameter weight in _model.parameters())
        {
            weight.requires_grad = false;
        }
        using var scope = NewDisposeScope();
        Tensor ids = tensor(Prompts[0], ScalarType.Int64).unsqueeze(0);                 // (1, T)
        using AdapterRouting routing = AdapterRouting.ForAllRows(adapter);
        Tensor logits = _model.ForwardTraining(ids, routing);                            // (1, T, V)
        logits.logsumexp(-1).sum().backward();

        Assert.All(adapter.parameters(), p => Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0));
        Assert.All(_model.parameters(), p => Assert.Null(p.grad));
    }

    private static LoraSettings AllModules(int rank, double alpha = 16) => new(rank, alpha, ["c_attn", "c_proj", "c_fc"]);

    private static AdapterRouting EveryRow(LoraAdapter adapter, IReadOnlyList<(int FirstRow, int RowCount)> spans) =>
        AdapterRouting.ForRows([new AdapterSegment(adapter, ServingBatch.Rows(0, spans.Sum(s => s.RowCount)))]);

    /// <summary>An adapter whose B is random too (a new one has B = 0 and changes nothing).</summary>
    private LoraAdapter RandomAdapter(LoraSettings settings, long seed)
    {
        var generator = new Generator((ulong)seed);
        LoraAdapter adapter = LoraAdapter.Create(_model.AdaptableLayers, settings, ScalarType.Float32, CPU, generator);
        using var noGrad = no_grad();
        foreach (LoraLayer layer in adapter.Layers.Values)
        {
            using Tensor noise = randn(layer.B.shape, generator: generator);
            layer.B.copy_(noise).mul_(0.2);
        }
        return adapter;
    }

    /// <summary>A second copy of the base with every adapted Conv1D's weight (in, out) replaced by W + scale (B A)ᵀ.</summary>
    private static Gpt2Model MergedCopy(LoraAdapter adapter)
    {
        Gpt2Model merged = CheckpointLoader.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);
        using var noGrad = no_grad();
        foreach ((string path, LoraLayer layer) in adapter.Layers)
        {
            Conv1D target = merged.modules().OfType<Conv1D>().Single(c => c.ModulePath == path);
            using Tensor update = layer.B.matmul(layer.A).t().mul(adapter.Settings.Scale); // (in, out)
            target.Weight.add_(update);
        }
        return merged;
    }

    private Tensor Train(long[] prompt, LoraAdapter? adapter, Gpt2Model? model = null)
    {
        using var noGrad = no_grad();
        using Tensor ids = tensor(prompt, ScalarType.Int64).unsqueeze(0);               // (1, T)
        using AdapterRouting? routing = adapter is null ? null : AdapterRouting.ForAllRows(adapter);
        using Tensor logits = (model ?? _model).ForwardTraining(ids, routing);          // (1, T, V)
        return logits.squeeze(0);                                                        // (T, V)
    }

    private static float MaxDifference(Tensor a, Tensor b)
    {
        using Tensor difference = a.sub(b).abs_();
        return difference.max().item<float>();
    }

    private static void Dispose(params List<Tensor>[] lists)
    {
        foreach (Tensor t in lists.SelectMany(l => l))
        {
            t.Dispose();
        }
    }
}
