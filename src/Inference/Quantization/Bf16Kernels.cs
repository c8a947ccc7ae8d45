using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// bfloat16 weights × float32 rows on AVX2 + FMA, for the few rows of a decode step.
/// </summary>
/// <remarks>
/// A bfloat16 is the top half of a float32, so the product is an ordinary FMA at full float32
/// precision once the weight is widened. Without AVX512_BF16 that is all a core can do, and at one
/// row the cost is the weight read, which is half of float32's. The weights are read 16 at a time as
/// 32-bit pairs (<see cref="ToPairOrder"/>): masking off a lane's low half gives its odd weight and
/// shifting it up gives its even one, two cheap instructions per 16 weights where zero-extending
/// 8 at a time takes two per 8, so the multiply units, not the widening, set the pace of batches.
/// Each widened weight vector serves two rows.
/// </remarks>
internal static unsafe class Bf16Kernels
{
    /// <summary>Elements per step along the input dimension (one 256-bit read); rows are padded with zeros to a multiple of it.</summary>
    public const int StepElements = 16;

    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Bytes of activations a chunk of rows may take: half of a 512 KiB L2, the other half for the weights and output.</summary>
    private const int L2Budget = 128 * 1024;

    public static int PaddedLength(int inputs) => (inputs + StepElements - 1) / StepElements * StepElements;

    /// <summary>
    /// Where weight (o, k) lives: blocks of four outputs with their rows interleaved step by step (128
    /// bytes: 16 of each row), so a block is one sequential stream; the last outputs % 4 rows follow, plain.
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

    /// <summary><see cref="FromSingle"/> over <paramref name="length"/> values, 16 at a time.</summary>
    public static void FromSingles(float* source, ushort* destination, int length)
    {
        int i = 0;
        if (Avx2.IsSupported)
        {
            for (; i + 16 <= length; i += 16)
            {
                Vector256<int> low = RoundedHighHalves(Avx.LoadVector256(source + i));
                Vector256<int> high = RoundedHighHalves(Avx.LoadVector256(source + i + 8));
                // The pack works within 128-bit lanes (low 0-3, high 0-3, low 4-7, high 4-7); the permute puts the quarters in order.
                Vector256<ushort> packed = Avx2.PackUnsignedSaturate(low, high);
                Avx.Store(destination + i, Avx2.Permute4x64(packed.AsUInt64(), 0b11_01_10_00).AsUInt16());
            }
        }
        for (; i < length; i++)
        {
            destination[i] = FromSingle(source[i]);
        }
    }

    /// <summary>Each lane's bfloat16 in its low 16 bits: <see cref="FromSingle"/>, NaN kept quiet.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> RoundedHighHalves(Vector256<float> values)
    {
        Vector256<uint> bits = values.AsUInt32();
        Vector256<uint> rounded = Avx2.ShiftRightLogical(
            Avx2.Add(Avx2.Add(bits, Vector256.Create(0x7FFFu)), Avx2.And(Avx2.ShiftRightLogical(bits, 16), Vector256.Create(1u))), 16);
        Vector256<uint> quiet = Avx2.Or(Avx2.ShiftRightLogical(bits, 16), Vector256.Create(0x40u));
        Vector256<uint> isNaN = Avx.CompareUnordered(values, values).AsUInt32();
        return Avx2.BlendVariable(rounded, quiet, isNaN).AsInt32();
    }

    /// <summary>
    /// Each 16 elements x_0..x_15 as x_0, x_2, …, x_14, x_1, x_3, …, x_15: the order in which a 256-bit
    /// read of 16 bfloat16 values gives them as float32 (even ones shifted up, odd ones masked), so
    /// float32 vectors kept in this order meet them lane by lane. <paramref name="length"/> a multiple of 16.
    /// </summary>
    public static void ToPairOrder(float* x, int length)
    {
        for (int i = 0; i < length; i += StepElements)
        {
            Vector256<float> low = Avx.LoadVector256(x + i), high = Avx.LoadVector256(x + i + 8);
            Vector256<float> even = Avx.Shuffle(low, high, 0b10_00_10_00);             // x0 x2 x8 x10 | x4 x6 x12 x14
            Vector256<float> odd = Avx.Shuffle(low, high, 0b11_01_11_01);              // x1 x3 x9 x11 | x5 x7 x13 x15
            Avx.Store(x + i, Avx2.Permute4x64(even.AsDouble(), 0b11_01_10_00).AsSingle());
            Avx.Store(x + i + 8, Avx2.Permute4x64(odd.AsDouble(), 0b11_01_10_00).AsSingle());
        }
    }

    /// <summary>The inverse of <see cref="ToPairOrder"/>.</summary>
    public static void FromPairOrder(float* x, int length)
    {
        for (int i = 0; i < length; i += StepElements)
        {
            Vector256<float> even = Avx.LoadVector256(x + i), odd = Avx.LoadVector256(x + i + 8);
            Vector256<float> low = Avx.UnpackLow(even, odd);                           // x0 x1 x2 x3 | x8 x9 x10 x11
            Vector256<float> high = Avx.UnpackHigh(even, odd);                         // x4 x5 x6 x7 | x12 x13 x14 x15
            Avx.Store(x + i, Avx.Permute2x128(low, high, 0x20));
            Avx.Store(x + i + 8, Avx.Permute2x128(low, high, 0x31));
        }
    }

    /// <summary>The even elements of 16 bfloat16 values read as 32-bit pairs, as float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Even(Vector256<uint> pairs) => Avx2.ShiftLeftLogical(pairs, 16).AsSingle();

    /// <summary>The odd elements of 16 bfloat16 values read as 32-bit pairs, as float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Odd(Vector256<uint> pairs) => Avx2.And(pairs, Vector256.Create(0xFFFF0000u)).AsSingle();

    /// <summary>
    /// y (n, outputs) = x (n, stride) · wᵀ (+ bias), w (outputs, stride) bfloat16 laid out by <see cref="Offset"/>;
    /// x zero-padded to stride and in <see cref="ToPairOrder"/>.
    /// </summary>
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
                Vector256<float> even = default, odd = default;
                for (int k = 0; k < stride; k += StepElements)
                {
                    Vector256<uint> pairs = Avx.LoadVector256((uint*)(w + k));
                    even = Fma.MultiplyAdd(Even(pairs), Avx.LoadVector256(row + k), even);
                    odd = Fma.MultiplyAdd(Odd(pairs), Avx.LoadVector256(row + k + 8), odd);
                }
                y[(long)r * outputs + o] = Vector256.Sum(Avx.Add(even, odd)) + (bias is null ? 0f : bias[o]);
            }
        }
    }

    /// <summary>Outputs [start, end) (start a multiple of four) as float32 rows of <paramref name="stride"/> from <paramref name="destination"/> on, zero past the inputs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Widen(ushort* weights, int stride, int outputs, float* destination, int start, int end)
    {
        int blocked = outputs / 4 * 4;
        int o = start;
        for (; o + 4 <= Math.Min(end, blocked); o += 4)
        {
            ushort* block = weights + (long)o * stride;
            for (int row = 0; row < 4; row++)
            {
                float* target = destination + (long)(o - start + row) * stride;
                for (int k = 0; k < stride; k += StepElements)
                {
                    ushort* piece = block + (long)k * 4 + row * StepElements;
                    Avx.Store(target + k, Widen(piece));
                    Avx.Store(target + k + 8, Widen(piece + 8));
                }
            }
        }
        for (; o < end; o++)
        {
            ushort* source = weights + Offset(o, 0, stride, outputs);
            for (int k = 0; k < stride; k += 8)
            {
                Avx.Store(destination + (long)(o - start) * stride + k, Widen(source + k));
            }
        }
    }

    /// <summary>Eight bfloat16 values in their own order as float32: a zero-extending load and a shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(ushort* p) => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static Vector128<float> FourByOne(ushort* w, int stride, float* x)
    {
        // Even and odd halves sum apart: eight independent sums keep the multiply units busy.
        Vector256<float> e0 = default, e1 = default, e2 = default, e3 = default;
        Vector256<float> o0 = default, o1 = default, o2 = default, o3 = default;
        for (int k = 0; k < stride; k += StepElements, w += 4 * StepElements)
        {
            Vector256<float> xEven = Avx.LoadVector256(x + k), xOdd = Avx.LoadVector256(x + k + 8);
            Vector256<uint> p0 = Avx.LoadVector256((uint*)w), p1 = Avx.LoadVector256((uint*)(w + StepElements));
            Vector256<uint> p2 = Avx.LoadVector256((uint*)(w + 2 * StepElements)), p3 = Avx.LoadVector256((uint*)(w + 3 * StepElements));
            e0 = Fma.MultiplyAdd(Even(p0), xEven, e0);
            o0 = Fma.MultiplyAdd(Odd(p0), xOdd, o0);
            e1 = Fma.MultiplyAdd(Even(p1), xEven, e1);
            o1 = Fma.MultiplyAdd(Odd(p1), xOdd, o1);
            e2 = Fma.MultiplyAdd(Even(p2), xEven, e2);
            o2 = Fma.MultiplyAdd(Odd(p2), xOdd, o2);
            e3 = Fma.MultiplyAdd(Even(p3), xEven, e3);
            o3 = Fma.MultiplyAdd(Odd(p3), xOdd, o3);
        }
        return Reduce(Avx.Add(e0, o0), Avx.Add(e1, o1), Avx.Add(e2, o2), Avx.Add(e3, o3));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (Vector128<float>, Vector128<float>) FourByTwo(ushort* w, int stride, float* x)
    {
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;
        float* x1 = x + stride;
        for (int k = 0; k < stride; k += StepElements, w += 4 * StepElements)
        {
            Vector256<float> aEven = Avx.LoadVector256(x + k), aOdd = Avx.LoadVector256(x + k + 8);
            Vector256<float> bEven = Avx.LoadVector256(x1 + k), bOdd = Avx.LoadVector256(x1 + k + 8);
            Vector256<uint> pairs = Avx.LoadVector256((uint*)w);
            Vector256<float> even = Even(pairs), odd = Odd(pairs);
            a0 = Fma.MultiplyAdd(even, aEven, a0);
            b0 = Fma.MultiplyAdd(even, bEven, b0);
            a0 = Fma.MultiplyAdd(odd, aOdd, a0);
            b0 = Fma.MultiplyAdd(odd, bOdd, b0);
            pairs = Avx.LoadVector256((uint*)(w + StepElements));
            even = Even(pairs);
            odd = Odd(pairs);
            a1 = Fma.MultiplyAdd(even, aEven, a1);
            b1 = Fma.MultiplyAdd(even, bEven, b1);
            a1 = Fma.MultiplyAdd(odd, aOdd, a1);
            b1 = Fma.MultiplyAdd(odd, bOdd, b1);
            pairs = Avx.LoadVector256((uint*)(w + 2 * StepElements));
            even = Even(pairs);
            odd = Odd(pairs);
            a2 = Fma.MultiplyAdd(even, aEven, a2);
            b2 = Fma.MultiplyAdd(even, bEven, b2);
            a2 = Fma.MultiplyAdd(odd, aOdd, a2);
            b2 = Fma.MultiplyAdd(odd, bOdd, b2);
            pairs = Avx.LoadVector256((uint*)(w + 3 * StepElements));
            even = Even(pairs);
            odd = Odd(pairs);
            a3 = Fma.MultiplyAdd(even, aEven, a3);
            b3 = Fma.MultiplyAdd(even, bEven, b3);
            a3 = Fma.MultiplyAdd(odd, aOdd, a3);
            b3 = Fma.MultiplyAdd(odd, bOdd, b3);
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
