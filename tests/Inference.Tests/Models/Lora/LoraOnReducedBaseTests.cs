using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Layers;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Quantization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Lora;

/// <summary>
/// LoRA on a base served in bfloat16 or int8 with its float32 projections released, as the engine serves one:
/// the adapter stays float32 and adds its update to the reduced base's products, and training it (a LoRA
/// fine-tune of the served model, QLoRA's way) multiplies by the weights serving multiplies by.
/// </summary>
public sealed class LoraOnReducedBaseTests
{
    private const string Fixture = "gpt2-random-2l-64d";
    private static readonly long[] Prompt = [464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13, 383];

    [Theory]
    [InlineData(WeightFormat.BFloat16)]
    [InlineData(WeightFormat.Int8)]
    public void Training_on_a_released_base_equals_training_on_its_served_weights_in_float32(WeightFormat format)
    {
        using Gpt2Model reduced = ReleasedBase(format);
        Assert.All(reduced.modules().OfType<Conv1D>(), c => Assert.True(c.FullPrecisionReleased && c.Weight.numel() == 0));
        using Gpt2Model dequantized = DequantizedCopy(reduced);
        using LoraAdapter adapter = RandomAdapter(reduced, seed: 3);

        using Tensor onReduced = Train(reduced, adapter);
        // The copy's tied head is its float32 embedding, which its token lookups read too; the reduced
        // base looks tokens up in the same float32 embedding but multiplies by the served head.
        using Tensor onDequantized = TrainWithHead(dequantized, adapter, reduced.ServedTiedHead!.Dequantize()!);

        // The same float32 arithmetic on the same values: only summation order may differ.
        Assert.True(MaxDifference(onReduced, onDequantized) < 1e-4f, $"{format}: {MaxDifference(onReduced, onDequantized)}");
    }

    [Theory]
    [InlineData(WeightFormat.BFloat16)]
    [InlineData(WeightFormat.Int8)]
    public void Gradients_of_training_on_a_released_base_reach_the_adapter_only(WeightFormat format)
    {
        using Gpt2Model reduced = ReleasedBase(format);
        using LoraAdapter adapter = RandomAdapter(reduced, seed: 5);
        foreach (Parameter weight in reduced.parameters())
        {
            weight.requires_grad = false;
        }
        using var scope = NewDisposeScope();
        Tensor ids = tensor(Prompt, ScalarType.Int64).unsqueeze(0);                      // (1, T)
        using AdapterRouting routing = AdapterRouting.ForAllRows(adapter);
        Tensor logits = reduced.ForwardTraining(ids, routing);                           // (1, T, V)
        logits.logsumexp(-1).sum().backward();

        Assert.All(adapter.parameters(), p => Assert.True(p.grad is not null && p.grad.abs().sum().item<float>() > 0));
        Assert.All(reduced.parameters(), p => Assert.Null(p.grad));
    }

    [Theory]
    // Relative to the largest logit. bfloat16: the same products, summed in another order.
    [InlineData(WeightFormat.BFloat16, 1e-4f)]
    // int8 serving quantizes each row of activations to 8 bits as well; training multiplies the float32 rows.
    [InlineData(WeightFormat.Int8, 5e-2f)]
    public void An_adapter_served_on_a_released_base_serves_what_training_on_it_computes(WeightFormat format, float tolerance)
    {
        using Gpt2Model reduced = ReleasedBase(format);
        using LoraAdapter adapter = RandomAdapter(reduced, seed: 7);

        List<Tensor> served = ServingBatch.Logits(reduced, [Prompt], spans => AdapterRouting.ForRows(
            [new AdapterSegment(adapter, ServingBatch.Rows(0, spans.Sum(s => s.RowCount)))]));
        List<Tensor> baseServed = ServingBatch.Logits(reduced, [Prompt], _ => null);
        using Tensor trained = Train(reduced, adapter);

        // The adapter must matter, or agreement would prove nothing.
        float scale = trained.abs().max().item<float>();
        Assert.True(MaxDifference(served[0], baseServed[0]) > 10 * tolerance * scale, $"{format}: the adapter barely changes the served logits");
        Assert.True(MaxDifference(served[0], trained) < tolerance * scale, $"{format}: served {MaxDifference(served[0], trained) / scale} of the largest logit from training's forward");
        foreach (Tensor t in served.Concat(baseServed))
        {
            t.Dispose();
        }
    }

    [Fact]
    public void A_released_projection_refuses_to_be_prepared_again()
    {
        using Gpt2Model reduced = ReleasedBase(WeightFormat.Int8);

        var error = Assert.Throws<InvalidOperationException>(() => reduced.PrepareForServing(WeightFormat.Float32));
        Assert.Contains("released", error.Message);
    }

    [Fact]
    public void Float32_serving_keeps_the_parameters()
    {
        using Gpt2Model model = Load();
        model.PrepareForServing(WeightFormat.Float32);
        ((ICausalLanguageModel)model).ReleaseFullPrecisionWeights();

        Assert.All(model.modules().OfType<Conv1D>(), c => Assert.False(c.FullPrecisionReleased));
        Assert.All(model.modules().OfType<Conv1D>(), c => Assert.True(c.Weight.numel() > 0));
    }

    private static Gpt2Model Load() => CheckpointLoader.Load(TestFixtures.ModelDirectory(Fixture), ScalarType.Float32, CPU);

    /// <summary>The fixture as a reduced-precision server holds it: prepared in <paramref name="format"/>, float32 projections released.</summary>
    private static Gpt2Model ReleasedBase(WeightFormat format)
    {
        Gpt2Model model = Load();
        model.PrepareForServing(format);
        ((ICausalLanguageModel)model).ReleaseFullPrecisionWeights();
        return model;
    }

    /// <summary>A float32 copy of the base whose every Conv1D holds the values the reduced form serves.</summary>
    private static Gpt2Model DequantizedCopy(Gpt2Model reduced)
    {
        Gpt2Model copy = Load();
        using var noGrad = no_grad();
        foreach (Conv1D source in reduced.modules().OfType<Conv1D>())
        {
            Conv1D target = copy.modules().OfType<Conv1D>().Single(c => c.ModulePath == source.ModulePath);
            using Tensor outByIn = source.Serving!.Dequantize()!;                            // (out, in)
            target.Weight.copy_(outByIn.t());                                                // (in, out)
        }
        return copy;
    }

    /// <summary>An adapter on every Conv1D whose B is random too (a new one has B = 0 and changes nothing).</summary>
    private static LoraAdapter RandomAdapter(Gpt2Model model, long seed)
    {
        var generator = new Generator((ulong)seed);
        LoraAdapter adapter = LoraAdapter.Create(model.AdaptableLayers, new LoraSettings(4, 8, ["c_attn", "c_proj", "c_fc"]), ScalarType.Float32, CPU, generator);
        using var noGrad = no_grad();
        foreach (LoraLayer layer in adapter.Layers.Values)
        {
            using Tensor noise = randn(layer.B.shape, generator: generator);
            layer.B.copy_(noise).mul_(0.2);
        }
        return adapter;
    }

    private static Tensor Train(Gpt2Model model, LoraAdapter adapter)
    {
        using var noGrad = no_grad();
        using Tensor ids = tensor(Prompt, ScalarType.Int64).unsqueeze(0);               // (1, T)
        using AdapterRouting routing = AdapterRouting.ForAllRows(adapter);
        using Tensor logits = model.ForwardTraining(ids, routing);                       // (1, T, V)
        return logits.squeeze(0);                                                        // (T, V)
    }

    private static Tensor TrainWithHead(Gpt2Model model, LoraAdapter adapter, Tensor head)
    {
        using var noGrad = no_grad();
        using (head)
        using (Tensor ids = tensor(Prompt, ScalarType.Int64).unsqueeze(0))             // (1, T)
        using (Tensor positions = arange(Prompt.Length, ScalarType.Int64))             // (T)
        using (AdapterRouting routing = AdapterRouting.ForAllRows(adapter))
        using (Tensor hidden = model.Forward(ids, positions, CausalAttention.Instance, routing)) // (1, T, C)
        {
            return hidden.squeeze(0).matmul(head.t());                                   // (T, V)
        }
    }

    private static float MaxDifference(Tensor a, Tensor b)
    {
        using Tensor difference = a.sub(b).abs_();
        return difference.max().item<float>();
    }
}
