using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace KernelBench;

/// <summary>
/// First hand-written weight-only products, AVX2 + FMA: this machine's EPYC (Zen 2, family 23 model 49)
/// has no AVX-512, no VNNI and no BF16 instructions, whatever the issue assumed. Weights are (out, in)
/// like nn.Linear; every thread takes a contiguous range of outputs, blocks of four outputs share each
/// load of the activations.
/// </summary>
internal static unsafe class Kernels
{
    public static readonly int Threads = Environment.ProcessorCount;

    private static void Split(int outputs, Action<int, int> body)
    {
        if (Threads == 1)
        {
            body(0, outputs);
            return;
        }
        int chunk = (outputs / Threads + 3) & ~3;
        Parallel.For(0, Threads, t =>
        {
            int start = Math.Min(outputs, t * chunk), end = t == Threads - 1 ? outputs : Math.Min(outputs, start + chunk);
            body(start, end);
        });
    }

    /// <summary>y (N, out) = x (N, in) f32 · dequant(W int8 (out, in), per-output scale): int8 → f32 on the fly.</summary>
    public static void Int8Dequant(sbyte* w, float* scale, float* x, float* y, int n, int inputs, int outputs)
    {
        Split(outputs, (start, end) =>
        {
            for (int o = start; o < end; o++)
            {
                sbyte* row = w + (long)o * inputs;
                for (int r = 0; r < n; r++)
                {
                    float* xr = x + (long)r * inputs;
                    Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero;
                    for (int k = 0; k < inputs; k += 16)
                    {
                        a0 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(row + k)), Avx.LoadVector256(xr + k), a0);
                        a1 = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(row + k + 8)), Avx.LoadVector256(xr + k + 8), a1);
                    }
                    y[(long)r * outputs + o] = Vector256.Sum(a0 + a1) * scale[o];
                }
            }
        });
    }

    /// <summary>
    /// Each row of x quantized to int8 (symmetric, per row), then int8·int8 → int32 dot products the AVX2
    /// way VNNI would do in one instruction: vpsignb moves x's sign onto w, vpmaddubsw multiplies |x| (u8,
    /// ≤ 127, so pairs never saturate) by it, vpmaddwd sums pairs to int32.
    /// </summary>
    public static void Int8Dot(sbyte* w, float* scale, float* x, float* y, int n, int inputs, int outputs, sbyte* xq, byte* xa, float* xs)
    {
        for (int r = 0; r < n; r++)
        {
            float* xr = x + (long)r * inputs;
            float max = 0f;
            for (int k = 0; k < inputs; k++)
            {
                max = MathF.Max(max, MathF.Abs(xr[k]));
            }
            float s = max == 0f ? 1f : max / 127f, inv = 1f / s;
            xs[r] = s;
            for (int k = 0; k < inputs; k++)
            {
                int q = (int)MathF.Round(xr[k] * inv);
                xq[(long)r * inputs + k] = (sbyte)q;
                xa[(long)r * inputs + k] = (byte)Math.Abs(q);
            }
        }
        Vector256<short> ones = Vector256.Create((short)1);
        Split(outputs, (start, end) =>
        {
            int o = start;
            for (; o + 4 <= end; o += 4)
            {
                sbyte* w0 = w + (long)o * inputs, w1 = w0 + inputs, w2 = w1 + inputs, w3 = w2 + inputs;
                for (int r = 0; r < n; r++)
                {
                    sbyte* q = xq + (long)r * inputs;
                    byte* a = xa + (long)r * inputs;
                    Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default;
                    for (int k = 0; k < inputs; k += 32)
                    {
                        Vector256<sbyte> qs = Avx.LoadVector256(q + k);
                        Vector256<byte> ab = Avx.LoadVector256(a + k);
                        c0 = Avx2.Add(c0, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ab, Avx2.Sign(Avx.LoadVector256(w0 + k), qs)), ones));
                        c1 = Avx2.Add(c1, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ab, Avx2.Sign(Avx.LoadVector256(w1 + k), qs)), ones));
                        c2 = Avx2.Add(c2, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ab, Avx2.Sign(Avx.LoadVector256(w2 + k), qs)), ones));
                        c3 = Avx2.Add(c3, Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(ab, Avx2.Sign(Avx.LoadVector256(w3 + k), qs)), ones));
                    }
                    float* yr = y + (long)r * outputs + o;
                    float sr = xs[r];
                    yr[0] = Vector256.Sum(c0) * sr * scale[o];
                    yr[1] = Vector256.Sum(c1) * sr * scale[o + 1];
                    yr[2] = Vector256.Sum(c2) * sr * scale[o + 2];
                    yr[3] = Vector256.Sum(c3) * sr * scale[o + 3];
                }
            }
            for (; o < end; o++)
            {
                sbyte* w0 = w + (long)o * inputs;
                for (int r = 0; r < n; r++)
                {
                    int acc = 0;
                    for (int k = 0; k < inputs; k++)
                    {
                        acc += xq[(long)r * inputs + k] * w0[k];
                    }
                    y[(long)r * outputs + o] = acc * xs[r] * scale[o];
                }
            }
        });
    }

    /// <summary>y (N, out) = x (N, in) f32 · W bf16 (out, in): bf16 → f32 is a 16-bit shift, then FMA.</summary>
    public static void Bf16(ushort* w, float* x, float* y, int n, int inputs, int outputs)
    {
        Split(outputs, (start, end) =>
        {
            int o = start;
            for (; o + 4 <= end; o += 4)
            {
                ushort* w0 = w + (long)o * inputs, w1 = w0 + inputs, w2 = w1 + inputs, w3 = w2 + inputs;
                for (int r = 0; r < n; r++)
                {
                    float* xr = x + (long)r * inputs;
                    Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
                    for (int k = 0; k < inputs; k += 8)
                    {
                        Vector256<float> xv = Avx.LoadVector256(xr + k);
                        c0 = Fma.MultiplyAdd(Widen(w0 + k), xv, c0);
                        c1 = Fma.MultiplyAdd(Widen(w1 + k), xv, c1);
                        c2 = Fma.MultiplyAdd(Widen(w2 + k), xv, c2);
                        c3 = Fma.MultiplyAdd(Widen(w3 + k), xv, c3);
                    }
                    float* yr = y + (long)r * outputs + o;
                    yr[0] = Vector256.Sum(c0);
                    yr[1] = Vector256.Sum(c1);
                    yr[2] = Vector256.Sum(c2);
                    yr[3] = Vector256.Sum(c3);
                }
            }
            for (; o < end; o++)
            {
                for (int r = 0; r < n; r++)
                {
                    float acc = 0f;
                    for (int k = 0; k < inputs; k++)
                    {
                        acc += BitConverter.Int32BitsToSingle(w[(long)o * inputs + k] << 16) * x[(long)r * inputs + k];
                    }
                    y[(long)r * outputs + o] = acc;
                }
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(ushort* p) =>
        Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle();

    /// <summary>Sum of a large buffer on all threads: the read bandwidth the products are bound by.</summary>
    public static float ReadSum(float* p, long count)
    {
        float[] parts = new float[Threads];
        long chunk = count / Threads / 32 * 32;
        Parallel.For(0, Threads, t =>
        {
            float* s = p + t * chunk;
            long len = t == Threads - 1 ? count - t * chunk : chunk;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            long k = 0;
            for (; k + 32 <= len; k += 32)
            {
                a0 = Avx.Add(a0, Avx.LoadVector256(s + k));
                a1 = Avx.Add(a1, Avx.LoadVector256(s + k + 8));
                a2 = Avx.Add(a2, Avx.LoadVector256(s + k + 16));
                a3 = Avx.Add(a3, Avx.LoadVector256(s + k + 24));
            }
            parts[t] = Vector256.Sum(a0 + a1 + a2 + a3);
        });
        return parts.Sum();
    }
}
