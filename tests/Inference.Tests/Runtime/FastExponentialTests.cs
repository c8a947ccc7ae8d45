using System.Runtime.Intrinsics;
using LlmServer.Inference.Runtime;

namespace LlmServer.Inference.Tests.Runtime;

/// <summary>
/// The float32 exponential serving's GELU and the sampler use: within two units in the last place of
/// the true value over the normal range, zero below it, +∞ above, NaN kept.
/// </summary>
public sealed class FastExponentialTests
{
    [Fact]
    public void Stays_within_two_units_in_the_last_place_over_the_normal_range()
    {
        double worst = 0;
        float worstAt = 0;
        const int samples = 400_000;
        var inputs = new float[8];
        for (int i = 0; i < samples; i += 8)
        {
            for (int lane = 0; lane < 8; lane++)
            {
                inputs[lane] = -87.3f + 175.6f * (i + lane) / samples;
            }
            Vector256<float> result = FastExponential.Exp(Vector256.Create(inputs));
            for (int lane = 0; lane < 8; lane++)
            {
                double exact = Math.Exp(inputs[lane]);
                // One unit in the last place of a float32 near the exact value.
                double unit = Math.Pow(2, Math.Floor(Math.Log2(exact)) - 23);
                double error = Math.Abs(result[lane] - exact) / unit;
                if (error > worst)
                {
                    (worst, worstAt) = (error, inputs[lane]);
                }
            }
        }
        Assert.True(worst <= 2.0, $"{worst:F2} units in the last place at x = {worstAt}");
    }

    [Theory]
    [InlineData(float.NegativeInfinity, 0f)]
    [InlineData(-200f, 0f)]
    [InlineData(-87.5f, 0f)]                     // subnormal results flush to zero
    [InlineData(0f, 1f)]
    [InlineData(88.5f, float.PositiveInfinity)]  // past the largest float32
    [InlineData(float.PositiveInfinity, float.PositiveInfinity)]
    public void Ends_of_the_range(float x, float expected)
    {
        Assert.Equal(expected, FastExponential.Exp(Vector256.Create(x))[0]);
    }

    [Fact]
    public void NaN_stays_NaN()
    {
        Assert.True(float.IsNaN(FastExponential.Exp(Vector256.Create(float.NaN))[3]));
    }

    [Fact]
    public void The_one_pass_shift_and_scale_matches_the_steps_it_replaces()
    {
        // A length off the vector width, so the scalar tail runs too; in place, as the sampler calls it.
        var random = new Random(5);
        float[] logits = Enumerable.Range(0, 1003).Select(_ => (float)(random.NextDouble() * 40 - 30)).ToArray();
        logits[17] = float.NegativeInfinity;
        float max = logits.Max(), scale = 1f / 0.7f;
        float[] weights = (float[])logits.Clone();

        FastExponential.ExpOfShiftedAndScaled(weights, max, scale, weights);

        for (int i = 0; i < logits.Length; i++)
        {
            double exact = Math.Exp((logits[i] - max) * scale);
            Assert.True(Math.Abs(weights[i] - exact) <= 3e-7 * exact, $"token {i}: {weights[i]} against {exact}");
        }
        Assert.Equal(0f, weights[17]);
        Assert.Equal(1f, weights[Array.IndexOf(logits, max)]);
    }
}
