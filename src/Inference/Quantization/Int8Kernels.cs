using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// int8 × int8 → int32 products on AVX2, for weights quantized per output channel and activations
/// quantized per row as they arrive.
/// </summary>
/// <remarks>
/// AVX2 has no signed×signed byte product; VNNI's one-instruction dot is not on every x86 server (this
/// project's CI machine lacks it). So each 32-byte step is the sequence llama.cpp's AVX2 path uses:
/// <c>vpsignb</c> moves the activation's sign onto the weight, <c>vpmaddubsw</c> multiplies the
/// activation's magnitude (unsigned) by it into 16-bit pair sums, which cannot saturate because both
/// sides are kept within ±127, and <c>vpmaddwd</c> against ones widens the pairs to 32 bits.
/// Each weight load serves two rows and each activation load four output channels, which is what lets
/// batched products run at the core's multiply rate rather than its load rate. The loops are compiled
/// optimized from the first call: tiered compilation's first tier would serve the first requests at a
/// fraction of the rate.
/// </remarks>
internal static unsafe class Int8Kernels
{
    /// <summary>Bytes per step along the input dimension; rows are padded with zeros to a multiple of it.</summary>
    public const int StepBytes = 32;

    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Bytes of activations a chunk of rows may take: half of a 512 KiB L2, the other half for the weights and output.</summary>
    private const int L2Budget = 128 * 1024;

    public static int PaddedLength(int inputs) => (inputs + StepBytes - 1) / StepBytes * StepBytes;

    /// <summary>
    /// Where weight (o, k) lives. Outputs go in blocks of four whose rows are interleaved step by step
    /// (128 bytes: 32 of each row), so a block is one sequential stream, which the hardware prefetcher
    /// follows far better than four; the last outputs % 4 rows follow, plain.
    /// </summary>
    public static long Offset(int o, int k, int stride, int outputs)
    {
        int blocked = outputs / 4 * 4;
        if (o >= blocked)
        {
            return (long)blocked * stride + (long)(o - blocked) * stride + k;
        }
        return (long)(o / 4) * 4 * stride + (long)(k / StepBytes) * 4 * StepBytes + (o % 4) * StepBytes + k % StepBytes;
    }

    /// <summary>
    /// Quantizes each row of <paramref name="x"/> (n, inputs) symmetrically to int8 with one scale per row:
    /// q = round(x / scale), scale = max|x| / 127. Writes q and |q| with rows <paramref name="stride"/> long,
    /// zero-padded, and the scales.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void QuantizeRows(float* x, int n, int inputs, int stride, sbyte* quantized, byte* magnitudes, float* scales)
    {
        Vector256<float> absMask = Vector256.Create(0x7FFFFFFF).AsSingle();
        Vector256<int> interleave = Vector256.Create(0, 4, 1, 5, 2, 6, 3, 7);
        for (int r = 0; r < n; r++)
        {
            float* row = x + (long)r * inputs;
            sbyte* q = quantized + (long)r * stride;
            byte* m = magnitudes + (long)r * stride;
            int k = 0;
            Vector256<float> largest = Vector256<float>.Zero;
            for (; k + 8 <= inputs; k += 8)
            {
                largest = Avx.Max(largest, Avx.And(Avx.LoadVector256(row + k), absMask));
            }
            float max = HorizontalMax(largest);
            for (; k < inputs; k++)
            {
                max = MathF.Max(max, MathF.Abs(row[k]));
            }
            scales[r] = max / 127f;
            float inverse = max == 0f ? 0f : 127f / max;
            Vector256<float> factor = Vector256.Create(inverse);
            k = 0;
            for (; k + 32 <= inputs; k += 32)
            {
                // Rounds to nearest under the default MXCSR mode, as torch's quantizers do.
                Vector256<int> a = Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(row + k), factor));
                Vector256<int> b = Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(row + k + 8), factor));
                Vector256<int> c = Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(row + k + 16), factor));
                Vector256<int> d = Avx.ConvertToVector256Int32(Avx.Multiply(Avx.LoadVector256(row + k + 24), factor));
                // The packs work within 128-bit lanes; the permute puts the 32 bytes back in input order.
                Vector256<sbyte> packed = Avx2.PackSignedSaturate(Avx2.PackSignedSaturate(a, b), Avx2.PackSignedSaturate(c, d));
                packed = Avx2.PermuteVar8x32(packed.AsInt32(), interleave).AsSByte();
                Avx.Store(q + k, packed);
                Avx.Store(m + k, Avx2.Abs(packed));
            }
            for (; k < inputs; k++)
            {
                int value = Math.Clamp((int)MathF.Round(row[k] * inverse), -127, 127);
                q[k] = (sbyte)value;
                m[k] = (byte)Math.Abs(value);
            }
            for (; k < stride; k++)
            {
                q[k] = 0;
                m[k] = 0;
            }
        }
    }

    /// <summary>
    /// y (n, outputs) = (xq · wᵀ) × rowScale × channelScale (+ bias), where w is (outputs, stride) int8 laid out by <see cref="Offset"/> and
    /// xq (n, stride) int8 with its magnitudes xm.
    /// </summary>
    public static void Multiply(sbyte* weights, float* channelScales, int stride, int outputs,
        sbyte* xq, byte* xm, float* rowScales, int n, float* y, float* bias)
    {
        KernelThreads.ForOutputRanges(outputs, 4, (start, end) =>
            MultiplyRange(weights, channelScales, stride, outputs, xq, xm, rowScales, n, y, bias, start, end));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyRange(sbyte* weights, float* channelScales, int stride, int outputs,
        sbyte* xq, byte* xm, float* rowScales, int n, float* y, float* bias, int start, int end)
    {
        // Rows go in chunks whose quantized activations stay in L2 while every weight block of the range
        // passes over them; a long prompt's rows all at once would be re-read from L3 for each block.
        int chunk = Math.Max(2, L2Budget / (2 * stride) & ~1);
        int blocked = start + (end - start) / 4 * 4;
        for (int first = 0; first < n; first += chunk)
        {
            int last = Math.Min(n, first + chunk);
            for (int o = start; o < blocked; o += 4)
            {
                sbyte* w = weights + (long)o * stride;                                   // the block of o .. o + 3, interleaved
                Vector128<float> scale = Sse.LoadVector128(channelScales + o);
                Vector128<float> offset = bias is null ? Vector128<float>.Zero : Sse.LoadVector128(bias + o);
                int r = first;
                for (; r + 2 <= last; r += 2)
                {
                    (Vector128<int> a, Vector128<int> b) = FourByTwo(w, stride, xq + (long)r * stride, xm + (long)r * stride);
                    Finish(a, scale, rowScales[r], offset, y + (long)r * outputs + o);
                    Finish(b, scale, rowScales[r + 1], offset, y + (long)(r + 1) * outputs + o);
                }
                if (r < last)
                {
                    Finish(FourByOne(w, stride, xq + (long)r * stride, xm + (long)r * stride), scale, rowScales[r], offset, y + (long)r * outputs + o);
                }
            }
        }
        for (int o = blocked; o < end; o++)
        {
            sbyte* w = weights + Offset(o, 0, stride, outputs);
            for (int r = 0; r < n; r++)
            {
                int sum = OneByOne(w, stride, xq + (long)r * stride, xm + (long)r * stride);
                y[(long)r * outputs + o] = sum * rowScales[r] * channelScales[o] + (bias is null ? 0f : bias[o]);
            }
        }
    }

    /// <summary>
    /// Outputs [start, end) (start a multiple of four) as float32 rows of <paramref name="stride"/> from
    /// <paramref name="destination"/> on: q × scale, zero past the inputs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Widen(sbyte* weights, float* channelScales, int stride, int outputs, float* destination, int start, int end)
    {
        int blocked = outputs / 4 * 4;
        int o = start;
        for (; o + 4 <= Math.Min(end, blocked); o += 4)
        {
            sbyte* block = weights + (long)o * stride;
            for (int row = 0; row < 4; row++)
            {
                Vector256<float> scale = Vector256.Create(channelScales[o + row]);
                float* target = destination + (long)(o - start + row) * stride;
                for (int k = 0; k < stride; k += StepBytes)
                {
                    WidenStep(block + (long)k * 4 + row * StepBytes, scale, target + k);
                }
            }
        }
        for (; o < end; o++)
        {
            sbyte* source = weights + Offset(o, 0, stride, outputs);
            Vector256<float> scale = Vector256.Create(channelScales[o]);
            for (int k = 0; k < stride; k += StepBytes)
            {
                WidenStep(source + k, scale, destination + (long)(o - start) * stride + k);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void WidenStep(sbyte* source, Vector256<float> scale, float* destination)
    {
        for (int part = 0; part < StepBytes; part += 8)
        {
            Vector256<float> values = Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(source + part));
            Avx.Store(destination + part, Avx.Multiply(values, scale));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Dot(Vector256<byte> magnitude, Vector256<sbyte> weight, Vector256<sbyte> sign, Vector256<short> ones) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(magnitude, Avx2.Sign(weight, sign)), ones);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (Vector128<int>, Vector128<int>) FourByTwo(sbyte* w, int stride, sbyte* q, byte* m)
    {
        Vector256<short> ones = Vector256.Create((short)1);
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<int> b0 = default, b1 = default, b2 = default, b3 = default;
        sbyte* q1 = q + stride;
        byte* m1 = m + stride;
        for (int k = 0; k < stride; k += StepBytes, w += 4 * StepBytes)
        {
            Vector256<sbyte> qa = Avx.LoadVector256(q + k), qb = Avx.LoadVector256(q1 + k);
            Vector256<byte> ma = Avx.LoadVector256(m + k), mb = Avx.LoadVector256(m1 + k);
            Vector256<sbyte> wv = Avx.LoadVector256(w);
            a0 = Avx2.Add(a0, Dot(ma, wv, qa, ones));
            b0 = Avx2.Add(b0, Dot(mb, wv, qb, ones));
            wv = Avx.LoadVector256(w + StepBytes);
            a1 = Avx2.Add(a1, Dot(ma, wv, qa, ones));
            b1 = Avx2.Add(b1, Dot(mb, wv, qb, ones));
            wv = Avx.LoadVector256(w + 2 * StepBytes);
            a2 = Avx2.Add(a2, Dot(ma, wv, qa, ones));
            b2 = Avx2.Add(b2, Dot(mb, wv, qb, ones));
            wv = Avx.LoadVector256(w + 3 * StepBytes);
            a3 = Avx2.Add(a3, Dot(ma, wv, qa, ones));
            b3 = Avx2.Add(b3, Dot(mb, wv, qb, ones));
        }
        return (Reduce(a0, a1, a2, a3), Reduce(b0, b1, b2, b3));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector128<int> FourByOne(sbyte* w, int stride, sbyte* q, byte* m)
    {
        Vector256<short> ones = Vector256.Create((short)1);
        Vector256<int> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int k = 0; k < stride; k += StepBytes, w += 4 * StepBytes)
        {
            Vector256<sbyte> qa = Avx.LoadVector256(q + k);
            Vector256<byte> ma = Avx.LoadVector256(m + k);
            a0 = Avx2.Add(a0, Dot(ma, Avx.LoadVector256(w), qa, ones));
            a1 = Avx2.Add(a1, Dot(ma, Avx.LoadVector256(w + StepBytes), qa, ones));
            a2 = Avx2.Add(a2, Dot(ma, Avx.LoadVector256(w + 2 * StepBytes), qa, ones));
            a3 = Avx2.Add(a3, Dot(ma, Avx.LoadVector256(w + 3 * StepBytes), qa, ones));
        }
        return Reduce(a0, a1, a2, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static int OneByOne(sbyte* w, int stride, sbyte* q, byte* m)
    {
        Vector256<short> ones = Vector256.Create((short)1);
        Vector256<int> sum = default;
        for (int k = 0; k < stride; k += StepBytes)
        {
            sum = Avx2.Add(sum, Dot(Avx.LoadVector256(m + k), Avx.LoadVector256(w + k), Avx.LoadVector256(q + k), ones));
        }
        return Vector256.Sum(sum);
    }

    /// <summary>The four accumulators' totals, in order, with three horizontal adds instead of four full reductions.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<int> Reduce(Vector256<int> c0, Vector256<int> c1, Vector256<int> c2, Vector256<int> c3)
    {
        Vector256<int> pairs = Avx2.HorizontalAdd(Avx2.HorizontalAdd(c0, c1), Avx2.HorizontalAdd(c2, c3));
        return Sse2.Add(pairs.GetLower(), pairs.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Finish(Vector128<int> sums, Vector128<float> channelScale, float rowScale, Vector128<float> bias, float* destination)
    {
        Vector128<float> scaled = Sse.Multiply(Sse2.ConvertToVector128Single(sums), Sse.Multiply(channelScale, Vector128.Create(rowScale)));
        Sse.Store(destination, Sse.Add(scaled, bias));
    }

    private static float HorizontalMax(Vector256<float> v)
    {
        Vector128<float> m = Sse.Max(v.GetLower(), v.GetUpper());
        m = Sse.Max(m, Sse.MoveHighToLow(m, m));
        m = Sse.Max(m, Sse.Shuffle(m, m, 0b01));
        return m.ToScalar();
    }
}
