using LlmServer.Inference.Models.Layers;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Layers;

/// <summary>
/// Serving's layer norm (C#, under inference mode on the host) against torch's, and training's path,
/// which must stay torch's op so autograd reaches the input and the parameters.
/// </summary>
public sealed class LayerNormalizationTests
{
    [Theory]
    [InlineData(1, 768)]       // a decode step's row, GPT-2 small's width
    [InlineData(45, 768)]      // rows split between the threads
    [InlineData(3, 37)]        // a width off the vector length
    public void Serving_matches_torchs_layer_norm(int rows, int width)
    {
        using var norm = new LayerNormalization(width, 1e-5, ScalarType.Float32, CPU);
        var generator = manual_seed(rows * 7 + width);
        using (no_grad())
        {
            foreach ((string name, TorchSharp.Modules.Parameter parameter) in norm.named_parameters())
            {
                parameter.copy_(randn([width], generator: generator));
            }
        }
        // Rows far from zero mean, as a residual stream's are, where a one-pass variance would lose digits.
        using Tensor x = randn([rows, width], generator: generator) * 3f + 40f;
        using Tensor expected = nn.functional.layer_norm(x, [width], norm.get_parameter("weight"), norm.get_parameter("bias"), 1e-5);
        Tensor actual;
        using (inference_mode())
        {
            actual = norm.Forward(x);
        }
        using (actual)
        {
            Assert.Equal(x.shape, actual.shape);
            float difference = actual.sub(expected).abs().max().item<float>();
            Assert.True(difference < 2e-5f, $"differs from torch by {difference}");
        }
    }

    [Fact]
    public void Serving_takes_any_leading_shape_and_non_contiguous_rows()
    {
        using var norm = new LayerNormalization(16, 1e-5, ScalarType.Float32, CPU);
        using Tensor wide = randn([2, 3, 32], generator: manual_seed(3));
        using Tensor x = wide.narrow(2, 8, 16);                                          // (2, 3, 16), rows at a stride of 32
        using Tensor expected = nn.functional.layer_norm(x, [16], norm.get_parameter("weight"), norm.get_parameter("bias"), 1e-5);
        Tensor actual;
        using (inference_mode())
        {
            actual = norm.Forward(x);
        }
        using (actual)
        {
            Assert.Equal(new long[] { 2, 3, 16 }, actual.shape);
            Assert.True(actual.sub(expected).abs().max().item<float>() < 1e-5f);
        }
    }

    [Fact]
    public void Outside_inference_mode_it_is_torchs_op_and_autograd_reaches_the_input_and_the_weight()
    {
        using var norm = new LayerNormalization(8, 1e-5, ScalarType.Float32, CPU);
        using Tensor x = randn(4, 8).requires_grad_();
        using Tensor y = norm.Forward(x);
        using Tensor loss = (y * y * arange(8)).sum();
        loss.backward();
        Assert.True(x.grad!.abs().sum().item<float>() > 0f);
        Assert.True(norm.get_parameter("weight")!.grad!.abs().sum().item<float>() > 0f);
    }
}
