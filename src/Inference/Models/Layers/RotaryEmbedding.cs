using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// Rotary position embeddings in Hugging Face's rotate-half convention: dimension i of a head is
/// paired with dimension i + hs/2, rotated by position * inv_freq[i]. Frequencies follow
/// transformers' rope init functions: default, "linear" (inv_freq / factor) and "llama3"
/// (_compute_llama3_parameters: long wavelengths slowed by factor, short ones kept, a smooth blend between).
/// </summary>
/// <remarks>
/// The cos and sin tables for every position are computed once, in float64 and then stored in the
/// model's dtype; a forward pass looks up its tokens' rows once and every layer reuses them. Not a
/// Module: the tables are derived, never loaded or saved.
/// </remarks>
public sealed class RotaryEmbedding : IDisposable
{
    private readonly Tensor _cos;                                                        // (P, hs)
    private readonly Tensor _sin;                                                        // (P, hs)

    public RotaryEmbedding(double[] inverseFrequencies, int maxPositions, ScalarType dtype, Device device)
    {
        int half = inverseFrequencies.Length;
        var cos = new double[maxPositions * 2 * half];
        var sin = new double[maxPositions * 2 * half];
        for (int p = 0; p < maxPositions; p++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = p * inverseFrequencies[i];
                // cat(freqs, freqs): both halves of a pair share one angle.
                cos[p * 2 * half + i] = cos[p * 2 * half + half + i] = Math.Cos(angle);
                sin[p * 2 * half + i] = sin[p * 2 * half + half + i] = Math.Sin(angle);
            }
        }
        using Tensor cosTable = tensor(cos, [maxPositions, 2 * half]);                   // (P, hs)
        using Tensor sinTable = tensor(sin, [maxPositions, 2 * half]);                   // (P, hs)
        _cos = cosTable.to(dtype, device);
        _sin = sinTable.to(dtype, device);
        MaxPositions = maxPositions;
    }

    public int MaxPositions { get; }

    /// <summary>inv_freq[i] = 1 / theta^(2i / hs), for i in [0, hs/2).</summary>
    public static double[] DefaultInverseFrequencies(int headSize, double theta) =>
        Enumerable.Range(0, headSize / 2).Select(i => 1.0 / Math.Pow(theta, 2.0 * i / headSize)).ToArray();

    /// <summary>Linear scaling: every frequency divided by factor (positions stretched by factor).</summary>
    public static double[] LinearInverseFrequencies(int headSize, double theta, double factor) =>
        DefaultInverseFrequencies(headSize, theta).Select(f => f / factor).ToArray();

    /// <summary>Llama 3's frequency bands, as transformers' _compute_llama3_parameters.</summary>
    public static double[] Llama3InverseFrequencies(int headSize, double theta, double factor, double lowFrequencyFactor, double highFrequencyFactor, int originalMaxPositions)
    {
        double lowFrequencyWavelength = originalMaxPositions / lowFrequencyFactor;
        double highFrequencyWavelength = originalMaxPositions / highFrequencyFactor;
        return DefaultInverseFrequencies(headSize, theta).Select(frequency =>
        {
            double wavelength = 2 * Math.PI / frequency;
            if (wavelength > lowFrequencyWavelength)
            {
                return frequency / factor;                                               // long wavelengths: slowed
            }
            if (wavelength < highFrequencyWavelength)
            {
                return frequency;                                                        // short wavelengths: kept
            }
            double smooth = (originalMaxPositions / wavelength - lowFrequencyFactor) / (highFrequencyFactor - lowFrequencyFactor);
            return (1 - smooth) * frequency / factor + smooth * frequency;               // between: blended
        }).ToArray();
    }

    /// <summary>The cos and sin rows of the given positions, shaped to broadcast over heads.</summary>
    /// <param name="positions">(N) in serving, (T) in training.</param>
    /// <returns>cos and sin, each (N, 1, hs) or (T, 1, hs).</returns>
    public (Tensor Cos, Tensor Sin) Lookup(Tensor positions)
    {
        using Tensor cos = _cos.index_select(0, positions);                              // (N, hs)
        using Tensor sin = _sin.index_select(0, positions);                              // (N, hs)
        return (cos.unsqueeze(-2), sin.unsqueeze(-2));                                   // (N, 1, hs)
    }

    /// <summary>x * cos + rotate_half(x) * sin, where rotate_half(x) = cat(-x2, x1).</summary>
    /// <param name="x">(..., n_heads, hs): (N, nh, hs) in serving, (B, T, nh, hs) in training.</param>
    /// <param name="cos">(N, 1, hs) or (T, 1, hs), from <see cref="Lookup"/>.</param>
    public static Tensor Rotate(Tensor x, Tensor cos, Tensor sin)
    {
        long half = x.shape[^1] / 2;
        using Tensor x1 = x.narrow(-1, 0, half);                                         // (..., nh, hs/2)
        using Tensor x2 = x.narrow(-1, half, half);                                      // (..., nh, hs/2)
        using Tensor negatedX2 = x2.neg();                                               // (..., nh, hs/2)
        using Tensor rotatedHalf = cat([negatedX2, x1], -1);                             // (..., nh, hs)
        using Tensor straight = x.mul(cos);                                              // (..., nh, hs)
        using Tensor turned = rotatedHalf.mul(sin);                                      // (..., nh, hs)
        return straight.add(turned);                                                     // (..., nh, hs)
    }

    public void Dispose()
    {
        _cos.Dispose();
        _sin.Dispose();
    }
}
