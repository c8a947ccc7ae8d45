using LlmServer.Inference.Models.Layers;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Layers;

/// <summary>
/// Serving's GELU (x / (1 + e^(−2u))) against torch's tanh approximation, and training's path, which
/// must stay torch's own op so autograd reaches the input.
/// </summary>
public sealed class TanhGeluTests
{
    [Theory]
    [InlineData(1, 3072)]      // one row of GPT-2's MLP: a single range, on the calling thread
    [InlineData(37, 1001)]     // many ranges between the threads, and a length off the vector width
    public void Serving_matches_torchs_tanh_approximation(int rows, int width)
    {
        var generator = manual_seed(rows * 31 + width);
        using Tensor random = randn([rows, width], generator: generator) * 4f;
        // The tails, where tanh saturates and e^(−2u) overflows, and exact zeros.
        using Tensor edges = tensor(new float[] { -1000f, -60f, -12f, -0f, 0f, 1e-30f, 12f, 60f, 1000f });
        foreach (Tensor x in new[] { random, edges })
        {
            using Tensor expected = nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh);
            Tensor actual;
            using (inference_mode())
            {
                actual = TanhGelu.Apply(x);
            }
            using (actual)
            {
                Assert.Equal(x.shape, actual.shape);
                // The two differ only in float32 rounding: measured at most 5e-7 here, where using
                // the exact GELU (erf) instead would differ by up to 5e-4.
                float difference = actual.sub(expected).abs().max().item<float>();
                Assert.True(difference < 5e-6f, $"differs from torch by {difference}");
                Assert.False(actual.isnan().any().item<bool>());
            }
        }
    }

    [Fact]
    public void Outside_inference_mode_it_is_torchs_op_and_autograd_reaches_the_input()
    {
        using Tensor x = randn(4, 8).requires_grad_();
        using Tensor y = TanhGelu.Apply(x);
        using Tensor loss = y.sum();
        loss.backward();
        using Tensor gradient = x.grad!;
        Assert.True(gradient.abs().sum().item<float>() > 0f);
    }
}
