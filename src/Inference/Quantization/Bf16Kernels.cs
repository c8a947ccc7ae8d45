using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// bfloat16 weights × float32 rows on AVX2 + FMA, for the few rows of a decode step.
/// </summary>
/// <remarks>
/// A bfloat16 is the top half of a float32, so widening is a zero-extend and a 16-bit shift; the product
/// is then an ordinary FMA at full float32 precision. Without AVX512_BF16 that is all a core can do, and
/// at one row the cost is the weight read, which is half of float32's. Each widened weight vector
/// serves two rows, which keeps batches near the core's multiply rate.
/// </remarks>
internal static unsafe class Bf16Kernels
{
    /// <summary>Elements per step along the input dimension; rows are padded with zeros to a multiple of it.</summary>
    public const int StepElements = 8;

    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Bytes of activations a chunk of rows may take: half of a 512 KiB L2, the other half for the weights and output.</summary>
    private const int L2Budget = 128 * 1024;

    public static int PaddedLength(int inputs) => (inputs + StepElements - 1) / StepElements * StepElements;

    /// <summary>
    /// Where weight (o, k) lives: blocks of four outputs with their rows interleaved step by step (one
    /// 64-byte line: 8 of each row), so a block is one sequential stream; the last outputs % 4 rows follow, plain.
    /// </summary>
    public static long Offset(int o, int k, int stride, int outputs)
    {
        int blocked = outputs / 4 * 4;
        if (o >= blocked)
        {
            return (long)blocked * stride + (long)(o - blocked) * stride + k;
        }
        return (long)(o / 4) * 4 * stride + (long)(k / StepElements) * 4 * StepElements + (o % 4) * StepElements + k % StepElements;
    }

    /// <summary>Round to nearest even, as torch's float32 → bfloat16 conversion does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort value) => BitConverter.UInt32BitsToSingle((uint)value << 16);

    /// <summary>y (n, outputs) = x (n, stride) · wᵀ (+ bias), w (outputs, stride) bfloat16 laid out by <see cref="Offset"/>; x zero-padded to stride.</summary>
    public static void Multiply(ushort* weights, int stride, int outputs, float* x, int n, float* y, float* bias)
    {
        KernelThreads.ForOutputRanges(outputs, 4, (start, end) => MultiplyRange(weights, stride, outputs, x, n, y, bias, start, end));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyRange(ushort* weights, int stride, int outputs, float* x, int n, float* y, float* bias, int start, int end)
    {
        // Rows go in chunks that stay in L2 while every weight block of the range passes over them.
        int chunk = Math.Max(2, L2Budget / (sizeof(float) * stride) & ~1);
        int blocked = start + (end - start) / 4 * 4;
        for (int first = 0; first < n; first += chunk)
        {
            int last = Math.Min(n, first + chunk);
            for (int o = start; o < blocked; o += 4)
            {
                ushort* w = weights + (long)o * stride;
                Vector128<float> offset = bias is null ? Vector128<float>.Zero : Sse.LoadVector128(bias + o);
                int r = first;
                for (; r + 2 <= last; r += 2)
                {
                    (Vector128<float> a, Vector128<float> b) = FourByTwo(w, stride, x + (long)r * stride);
                    Sse.Store(y + (long)r * outputs + o, Sse.Add(a, offset));
                    Sse.Store(y + (long)(r + 1) * outputs + o, Sse.Add(b, offset));
                }
                if (r < last)
                {
                    Sse.Store(y + (long)r * outputs + o, Sse.Add(FourByOne(w, stride, x + (long)r * stride), offset));
                }
            }
        }
        for (int o = blocked; o < end; o++)
        {
            ushort* w = weights + Offset(o, 0, stride, outputs);
            for (int r = 0; r < n; r++)
            {
                float* row = x + (long)r * stride;
                Vector256<float> sum = default;
                for (int k = 0; k < stride; k += StepElements)
                {
                    sum = Fma.MultiplyAdd(Widen(w + k), Avx.LoadVector256(row + k), sum);
                }
                y[(long)r * outputs + o] = Vector256.Sum(sum) + (bias is null ? 0f : bias[o]);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(ushort* p) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector128<float> FourByOne(ushort* w, int stride, float* x)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        for (int k = 0; k < stride; k += StepElements, w += 4 * StepElements)
        {
            Vector256<float> xa = Avx.LoadVector256(x + k);
            a0 = Fma.MultiplyAdd(Widen(w), xa, a0);
            a1 = Fma.MultiplyAdd(Widen(w + StepElements), xa, a1);
            a2 = Fma.MultiplyAdd(Widen(w + 2 * StepElements), xa, a2);
            a3 = Fma.MultiplyAdd(Widen(w + 3 * StepElements), xa, a3);
        }
        return Reduce(a0, a1, a2, a3);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (Vector128<float>, Vector128<float>) FourByTwo(ushort* w, int stride, float* x)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        float* x1 = x + stride;
        for (int k = 0; k < stride; k += StepElements, w += 4 * StepElements)
        {
            Vector256<float> xa = Avx.LoadVector256(x + k), xb = Avx.LoadVector256(x1 + k);
            Vector256<float> wv = Widen(w);
            a0 = Fma.MultiplyAdd(wv, xa, a0);
            b0 = Fma.MultiplyAdd(wv, xb, b0);
            wv = Widen(w + StepElements);
            a1 = Fma.MultiplyAdd(wv, xa, a1);
            b1 = Fma.MultiplyAdd(wv, xb, b1);
            wv = Widen(w + 2 * StepElements);
            a2 = Fma.MultiplyAdd(wv, xa, a2);
            b2 = Fma.MultiplyAdd(wv, xb, b2);
            wv = Widen(w + 3 * StepElements);
            a3 = Fma.MultiplyAdd(wv, xa, a3);
            b3 = Fma.MultiplyAdd(wv, xb, b3);
        }
        return (Reduce(a0, a1, a2, a3), Reduce(b0, b1, b2, b3));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Reduce(Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3)
    {
        Vector256<float> pairs = Avx.HorizontalAdd(Avx.HorizontalAdd(c0, c1), Avx.HorizontalAdd(c2, c3));
        return Sse.Add(pairs.GetLower(), pairs.GetUpper());
    }
}
