using LlmServer.Inference.Models;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// Serving multiplies by its own copies of the weights (Conv1D's (out, in) copy, the LM head's
/// (C, V) copy); whatever the row count, the product must be the plain x W + b of the parameters,
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
        using Tensor served = Serve(linear, x);

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

    private static Tensor Serve(Conv1D linear, Tensor x)
    {
        using var inference = inference_mode();
        return linear.Forward(x);
    }
}
