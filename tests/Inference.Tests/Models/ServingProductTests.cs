using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Layers;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// Serving multiplies by its own copies of the weights (MKL's packed layout of each Conv1D and of
/// the tied LM head); whatever the row count, the product must be the plain x W + b of the parameters,
/// and a weight changed after <see cref="Conv1D.PrepareForServing"/> must not be served stale
/// once it is called again.
/// </summary>
public sealed class ServingProductTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(33)]
    public void Conv1D_serving_product_equals_x_W_plus_b(int rows)
    {
        using var linear = new Conv1D(24, 40, ScalarType.Float32, CPU);
        var generator = manual_seed(7);
        using (no_grad())
        {
            foreach (var parameter in linear.parameters())
            {
                parameter.copy_(randn(parameter.shape, generator: generator));
            }
        }
        linear.PrepareForServing();
        using Tensor x = randn([rows, 24], generator: generator);
        Tensor bias = linear.parameters().Single(p => p.dim() == 1);

        using Tensor expected = x.matmul(linear.Weight).add(bias);                         // (rows, 40)
        using Tensor biasBefore = bias.clone();
        using Tensor weightBefore = linear.Weight.clone();
        using Tensor served = Serve(linear, x);

        // The product is written into fresh memory, never into the parameters it starts from.
        Assert.True(bias.eq(biasBefore).all().item<bool>());
        Assert.True(linear.Weight.eq(weightBefore).all().item<bool>());
        Assert.Equal([rows, 40L], served.shape);
        Assert.True(served.is_contiguous());
        Assert.True(served.sub(expected).abs().max().item<float>() < 1e-4f);

        // New weights (a hot swap, a training step) are served once PrepareForServing runs again.
        using (no_grad())
        {
            linear.Weight.mul_(2);
        }
        linear.PrepareForServing();
        using Tensor doubled = x.matmul(linear.Weight).add(bias);
        using Tensor servedAgain = Serve(linear, x);
        Assert.True(servedAgain.sub(doubled).abs().max().item<float>() < 1e-4f);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(33)]
    public void Tied_LM_head_serving_product_equals_hidden_times_wte_transposed(int rows)
    {
        using Gpt2Model model = CheckpointLoader.Load(TestFixtures.ModelDirectory("gpt2-random-2l-64d"), ScalarType.Float32, CPU);
        model.PrepareForServing();
        var generator = manual_seed(11);
        using Tensor hidden = randn([rows, model.Config.EmbeddingSize], generator: generator);  // (rows, C)
        Tensor wte = model.named_parameters().Single(p => p.name == "wte.weight").parameter;     // (V, C)

        using Tensor expected = hidden.matmul(wte.t());                                    // (rows, V)
        using Tensor served = ServeLogits(model, hidden);

        Assert.Equal([rows, (long)model.Config.VocabSize], served.shape);
        Assert.True(served.sub(expected).abs().max().item<float>() < 1e-4f);
    }

    private static Tensor ServeLogits(Gpt2Model model, Tensor hidden)
    {
        using var inference = inference_mode();
        return model.Logits(hidden);
    }

    private static Tensor Serve(Conv1D linear, Tensor x)
    {
        using var inference = inference_mode();
        return linear.Forward(x);
    }
}
