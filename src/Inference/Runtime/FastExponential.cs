using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlmServer.Inference.Runtime;

/// <summary>
/// e^x on eight float32 lanes at once, within two units in the last place, in float32 throughout.
/// </summary>
/// <remarks>
/// <see cref="Vector256.Exp(Vector256{float})"/> (and <c>TensorPrimitives.Exp</c>, built on it) widens to
/// double precision for its last half unit of accuracy, which costs about twice this; GELU over a
/// batch's MLP and the sampler's weights over the vocabulary are a few percent of a step spent mostly
/// in it. The method is Cephes' <c>expf</c>: x = n ln 2 + r with |r| ≤ ln 2 / 2 (ln 2 in two parts,
/// so r is exact), a degree-7 polynomial for e^r, and 2^n put into the exponent field. Results that
/// would be subnormal are flushed to zero (below e^−87.3, the smallest normal float); past e^88.4
/// they are +∞; NaN stays NaN.
/// </remarks>
internal static class FastExponential
{
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    private const float Lowest = -87.33654f;      // ln of the smallest normal float32
    private const float Highest = 88.37626f;      // the largest x with n = 127

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        Vector256<float> clamped = Avx.Min(Avx.Max(x, Vector256.Create(Lowest)), Vector256.Create(Highest));
        Vector256<float> n = Avx.RoundToNearestInteger(Avx.Multiply(clamped, Vector256.Create(1.44269504088896341f)));
        Vector256<float> r = Fma.MultiplyAddNegated(n, Vector256.Create(0.693359375f), clamped);
        r = Fma.MultiplyAddNegated(n, Vector256.Create(-2.12194440e-4f), r);
        // e^r = 1 + r + r² P(r), Cephes' coefficients.
        Vector256<float> p = Vector256.Create(1.9875691500e-4f);
        p = Fma.MultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Fma.MultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = Fma.MultiplyAdd(p, Avx.Multiply(r, r), Avx.Add(r, Vector256.Create(1f)));
        Vector256<int> twoToTheN = Avx2.ShiftLeftLogical(Avx2.Add(Avx.ConvertToVector256Int32(n), Vector256.Create(127)), 23);
        Vector256<float> result = Avx.Multiply(p, twoToTheN.AsSingle());
        result = Avx.BlendVariable(result, Vector256<float>.Zero, Avx.CompareLessThan(x, Vector256.Create(Lowest)));
        result = Avx.BlendVariable(result, Vector256.Create(float.PositiveInfinity), Avx.CompareGreaterThan(x, Vector256.Create(Highest)));
        return Avx.BlendVariable(result, x, Avx.CompareUnordered(x, x));
    }

    /// <summary>
    /// destination[i] = e^((source[i] − <paramref name="shift"/>) × <paramref name="scale"/>), one pass; the
    /// spans may be the same. The subtraction and the product round as the two separate steps would.
    /// </summary>
    public static unsafe void ExpOfShiftedAndScaled(ReadOnlySpan<float> source, float shift, float scale, Span<float> destination)
    {
        if (destination.Length < source.Length)
        {
            throw new ArgumentException("the destination is shorter than the source", nameof(destination));
        }
        int length = source.Length, i = 0;
        fixed (float* from = source, to = destination)
        {
            if (IsSupported)
            {
                Vector256<float> shifts = Vector256.Create(shift), scales = Vector256.Create(scale);
                for (; i + 8 <= length; i += 8)
                {
                    Avx.Store(to + i, Exp(Avx.Multiply(Avx.Subtract(Avx.LoadVector256(from + i), shifts), scales)));
                }
            }
            for (; i < length; i++)
            {
                to[i] = MathF.Exp((from[i] - shift) * scale);
            }
        }
    }
}
