using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using TorchSharp;
using static TorchSharp.torch;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// Decode attention on the CPU, read where the keys and values lie in the paged cache: one query
/// token per sequence, its context found through the sequence's block table.
/// </summary>
/// <remarks>
/// The general path gathers every sequence's blocks into a contiguous batch and runs SDPA on it.
/// For decode that gather writes a copy of the whole context of every sequence, every layer, every
/// step. Here each key and value is read once, straight from the pool, at about one core's read
/// bandwidth (docs/benchmarks.md, "Attention", has both measured).
/// Under grouped-query attention a cache row holds n_kv heads and query head h reads KV head
/// h / (nh / n_kv): each key and value head is read once for all the query heads of its group.
/// Threads split the sequences (or a lone sequence's KV heads) through <see cref="KernelThreads"/>,
/// which runs them in libtorch's own OpenMP team: a .NET thread-pool worker beside libtorch's
/// spinning workers made the call slower and far less steady than one thread.
/// </remarks>
internal static unsafe class PagedDecodeAttention
{
    /// <summary>Float32 and bfloat16 caches in host memory; every other cache goes through the gather path.</summary>
    public static bool Supports(PagedKvCache cache) =>
        cache.Device.type == DeviceType.CPU && cache.Dtype is ScalarType.Float32 or ScalarType.BFloat16;

    /// <summary>
    /// Attends one query per sequence of <paramref name="group"/> over its cached context, the
    /// current token included (its key and value must already be in the cache).
    /// </summary>
    /// <param name="queries">(B, nh, hs) float32: heads and head elements contiguous, rows at any stride.</param>
    /// <returns>(B, nh * hs): each sequence's heads side by side, ready for the output projection.</returns>
    public static Tensor Run(Tensor queries, PagedKvCache cache, int layer, AttentionGroup group)
    {
        DecodeContexts contexts = group.DecodeContexts
            ?? throw new ArgumentException("the group was not laid out for in-place decode", nameof(group));
        int sequences = group.SequenceCount, heads = (int)queries.shape[1], headSize = (int)queries.shape[2];
        int kvHeads = (int)cache.Keys(layer).shape[1];
        if (queries.shape[0] != sequences || contexts.KeyCounts.Length != sequences || queries.stride(2) != 1 || queries.stride(1) != headSize
            || queries.dtype != ScalarType.Float32 || queries.device_type != DeviceType.CPU || heads % kvHeads != 0)
        {
            throw new ArgumentException($"queries must be ({sequences}, nh, hs) float32 on the CPU with contiguous heads, one per decode context, nh a multiple of the cache's {kvHeads} heads", nameof(queries));
        }
        Tensor output = empty([sequences, heads * headSize], ScalarType.Float32, CPU);              // (B, C)
        var job = new Job
        {
            Queries = (float*)TensorMemory.DataPointer(queries),
            QueryRowStride = queries.stride(0),
            Keys = (void*)TensorMemory.DataPointer(cache.Keys(layer)),
            Values = (void*)TensorMemory.DataPointer(cache.Values(layer)),
            ElementSize = PagedKvCache.ElementSize(cache.Dtype),
            Output = (float*)TensorMemory.DataPointer(output),
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadSize = headSize,
            BlockSize = cache.BlockSize,
            Scale = 1f / MathF.Sqrt(headSize),
            Contexts = contexts,
        };
        job.Attend();
        return output;
    }

    private struct Job
    {
        public float* Queries;
        public long QueryRowStride;
        public void* Keys;       // (slots, n_kv, hs), float32 or bfloat16
        public void* Values;     // (slots, n_kv, hs)
        public int ElementSize;  // 4: float32, 2: bfloat16
        public float* Output;    // (B, nh * hs)
        public int HeadCount;
        public int KvHeadCount;
        public int HeadSize;
        public int BlockSize;
        public float Scale;
        public DecodeContexts Contexts;

        // Optimized at once: these run a few hundred times a step, and tier-0 code
        // (before tiering catches up) is several times slower on vector code.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Attend()
        {
            Job job = this;
            int sequences = Contexts.KeyCounts.Length;
            // Sequences are independent, so threads split them; a lone sequence is split by KV heads,
            // each thread reading its heads' part of every cache row.
            if (sequences > 1)
            {
                KernelThreads.ForRanges(sequences, 1, (start, end) =>
                {
                    for (int sequence = start; sequence < end; sequence++)
                    {
                        job.AttendOne(sequence, 0, job.KvHeadCount);
                    }
                });
            }
            else if (sequences == 1)
            {
                KernelThreads.ForRanges(KvHeadCount, 1, (start, end) => job.AttendOne(0, start, end));
            }
        }

        // All heads of a sequence together, a cache row at a time: a row holds every head's key
        // (or value) of one token side by side, and a block's rows are adjacent, so the context
        // streams through in address order. Head by head it would be read in 256-byte pieces
        // a row apart, which the prefetchers follow far worse (docs/benchmarks.md, "Attention").
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void AttendOne(int sequence, int firstKvHead, int endKvHead)
        {
            int keyCount = Contexts.KeyCounts[sequence];
            float[] scoreBuffer = ArrayPool<float>.Shared.Rent(HeadCount * keyCount);
            try
            {
                AttendOne(sequence, firstKvHead, endKvHead, scoreBuffer);
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scoreBuffer);
            }
        }

        /// <summary>Query heads of KV heads [firstKvHead, endKvHead) of one sequence.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void AttendOne(int sequence, int firstKvHead, int endKvHead, float[] scoreBuffer)
        {
            int keyCount = Contexts.KeyCounts[sequence];
            int rowWidth = KvHeadCount * HeadSize;                                       // a cache row: n_kv heads
            int outputWidth = HeadCount * HeadSize;
            // Query heads kvHead * groupSize .. + groupSize - 1 read KV head kvHead (one each without GQA).
            int groupSize = HeadCount / KvHeadCount;
            ReadOnlySpan<int> blocks = Contexts.BlockTables.AsSpan(sequence * Contexts.BlocksPerSequence, Contexts.BlocksPerSequence);
            float* query = Queries + sequence * QueryRowStride;
            // scores[h * keyCount + t] = q_h . k_{t,h} / sqrt(hs)
            Span<float> scores = scoreBuffer.AsSpan(0, HeadCount * keyCount);
            bool fourRows = FourRowsAtOnce(HeadSize);
            for (int start = 0, blockIndex = 0; start < keyCount; start += BlockSize, blockIndex++)
            {
                byte* block = (byte*)Keys + (long)blocks[blockIndex] * BlockSize * rowWidth * ElementSize;
                int inBlock = Math.Min(BlockSize, keyCount - start);
                int offset = 0;
                // Four adjacent rows at a time: four independent sums per head keep the multiply
                // units busy, where one 64-wide dot at a time waits on its own additions.
                for (; fourRows && offset + 4 <= inBlock; offset += 4)
                {
                    byte* key = block + (long)offset * rowWidth * ElementSize;
                    for (int kvHead = firstKvHead, head = firstKvHead * groupSize; kvHead < endKvHead; kvHead++)
                    {
                        byte* keyHead = key + (long)kvHead * HeadSize * ElementSize;
                        for (int member = 0; member < groupSize; member++, head++)
                        {
                            Vector128<float> dots = ElementSize == 2
                                ? DotFourRows(query + head * HeadSize, (ushort*)keyHead, rowWidth, HeadSize)
                                : DotFourRows(query + head * HeadSize, (float*)keyHead, rowWidth, HeadSize);
                            (dots * Scale).CopyTo(scores.Slice(head * keyCount + start + offset, 4));
                        }
                    }
                }
                for (; offset < inBlock; offset++)
                {
                    byte* key = block + (long)offset * rowWidth * ElementSize;
                    for (int kvHead = firstKvHead, head = firstKvHead * groupSize; kvHead < endKvHead; kvHead++)
                    {
                        byte* keyHead = key + (long)kvHead * HeadSize * ElementSize;
                        for (int member = 0; member < groupSize; member++, head++)
                        {
                            float dot = ElementSize == 2
                                ? Dot(query + head * HeadSize, (ushort*)keyHead, HeadSize)
                                : Dot(query + head * HeadSize, (float*)keyHead, HeadSize);
                            scores[head * keyCount + start + offset] = dot * Scale;
                        }
                    }
                }
            }

            // Softmax per head without the division; each head's output is divided by its sum at the end.
            Span<float> sums = stackalloc float[HeadCount];
            int firstHead = firstKvHead * groupSize, endHead = endKvHead * groupSize;
            for (int head = firstHead; head < endHead; head++)
            {
                Span<float> headScores = scores.Slice(head * keyCount, keyCount);
                float max = TensorPrimitives.Max(headScores);
                TensorPrimitives.Add(headScores, -max, headScores);
                TensorPrimitives.Exp(headScores, headScores);
                sums[head] = TensorPrimitives.Sum(headScores);
            }

            // out_h = sum_t p_{h,t} v_{t,h} / sum_h
            float* output = Output + (long)sequence * outputWidth;
            var outputRow = new Span<float>(output, outputWidth);
            outputRow.Slice(firstHead * HeadSize, (endHead - firstHead) * HeadSize).Clear();
            for (int start = 0, blockIndex = 0; start < keyCount; start += BlockSize, blockIndex++)
            {
                byte* block = (byte*)Values + (long)blocks[blockIndex] * BlockSize * rowWidth * ElementSize;
                int inBlock = Math.Min(BlockSize, keyCount - start);
                int offset = 0;
                // Four rows per pass over a head's output: a quarter of the loads and stores of it.
                for (; fourRows && offset + 4 <= inBlock; offset += 4)
                {
                    byte* value = block + (long)offset * rowWidth * ElementSize;
                    for (int kvHead = firstKvHead, head = firstHead; kvHead < endKvHead; kvHead++)
                    {
                        byte* valueHead = value + (long)kvHead * HeadSize * ElementSize;
                        for (int member = 0; member < groupSize; member++, head++)
                        {
                            Vector128<float> weights = Vector128.Create(scores.Slice(head * keyCount + start + offset, 4));
                            if (ElementSize == 2)
                            {
                                MultiplyAddFourRows((ushort*)valueHead, rowWidth, weights, output + head * HeadSize, HeadSize);
                            }
                            else
                            {
                                MultiplyAddFourRows((float*)valueHead, rowWidth, weights, output + head * HeadSize, HeadSize);
                            }
                        }
                    }
                }
                for (; offset < inBlock; offset++)
                {
                    byte* value = block + (long)offset * rowWidth * ElementSize;
                    for (int kvHead = firstKvHead, head = firstHead; kvHead < endKvHead; kvHead++)
                    {
                        byte* valueHead = value + (long)kvHead * HeadSize * ElementSize;
                        for (int member = 0; member < groupSize; member++, head++)
                        {
                            float weight = scores[head * keyCount + start + offset];
                            if (ElementSize == 2)
                            {
                                MultiplyAdd((ushort*)valueHead, weight, output + head * HeadSize, HeadSize);
                            }
                            else
                            {
                                MultiplyAdd((float*)valueHead, weight, output + head * HeadSize, HeadSize);
                            }
                        }
                    }
                }
            }
            for (int head = firstHead; head < endHead; head++)
            {
                Span<float> headOutput = outputRow.Slice(head * HeadSize, HeadSize);
                TensorPrimitives.Multiply(headOutput, 1f / sums[head], headOutput);
            }
        }
    }

    /// <summary>Whether the four-row kernels serve this head size (whole 256-bit vectors, AVX2 and FMA).</summary>
    private static bool FourRowsAtOnce(int headSize) => Avx2.IsSupported && Fma.IsSupported && headSize % Vector256<float>.Count == 0;

    /// <summary>q . k_j for four cache rows k_0..k_3, <paramref name="rowStride"/> elements apart; head size a multiple of 8.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static Vector128<float> DotFourRows(float* q, float* k, int rowStride, int length)
    {
        Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero, a2 = Vector256<float>.Zero, a3 = Vector256<float>.Zero;
        float* k1 = k + rowStride, k2 = k1 + rowStride, k3 = k2 + rowStride;
        for (int i = 0; i < length; i += Vector256<float>.Count)
        {
            Vector256<float> qv = Avx.LoadVector256(q + i);
            a0 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k + i), a0);
            a1 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k1 + i), a1);
            a2 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k2 + i), a2);
            a3 = Fma.MultiplyAdd(qv, Avx.LoadVector256(k3 + i), a3);
        }
        return SumEach(a0, a1, a2, a3);
    }

    /// <summary>As <see cref="DotFourRows(float*, float*, int, int)"/> with the rows in bfloat16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static Vector128<float> DotFourRows(float* q, ushort* k, int rowStride, int length)
    {
        Vector256<float> a0 = Vector256<float>.Zero, a1 = Vector256<float>.Zero, a2 = Vector256<float>.Zero, a3 = Vector256<float>.Zero;
        ushort* k1 = k + rowStride, k2 = k1 + rowStride, k3 = k2 + rowStride;
        Prefetch(k + 4 * rowStride, length * sizeof(ushort), rowStride * sizeof(ushort));
        for (int i = 0; i < length; i += Vector256<float>.Count)
        {
            Vector256<float> qv = Avx.LoadVector256(q + i);
            a0 = Fma.MultiplyAdd(qv, Widen(k + i), a0);
            a1 = Fma.MultiplyAdd(qv, Widen(k1 + i), a1);
            a2 = Fma.MultiplyAdd(qv, Widen(k2 + i), a2);
            a3 = Fma.MultiplyAdd(qv, Widen(k3 + i), a3);
        }
        return SumEach(a0, a1, a2, a3);
    }

    /// <summary>
    /// Asks for the cache lines of the next four rows' head pieces while these four are summed: the
    /// bfloat16 reads, a few instructions per byte more than float32's, otherwise leave the memory
    /// bus idle between misses.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(void* first, int bytes, int rowBytes)
    {
        for (int row = 0; row < 4; row++)
        {
            byte* p = (byte*)first + (long)row * rowBytes;
            for (int offset = 0; offset < bytes; offset += 64)
            {
                Sse.Prefetch0(p + offset);
            }
        }
    }

    /// <summary>(Σa0, Σa1, Σa2, Σa3): two rounds of pairwise adds, then the two 128-bit halves.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> SumEach(Vector256<float> a0, Vector256<float> a1, Vector256<float> a2, Vector256<float> a3)
    {
        Vector256<float> sums = Avx.HorizontalAdd(Avx.HorizontalAdd(a0, a1), Avx.HorizontalAdd(a2, a3));
        return sums.GetLower() + sums.GetUpper();
    }

    /// <summary>destination += Σ_j weights_j · x_j over four rows x_0..x_3, <paramref name="rowStride"/> elements apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyAddFourRows(float* x, int rowStride, Vector128<float> weights, float* destination, int length)
    {
        Vector256<float> w0 = Vector256.Create(weights.GetElement(0)), w1 = Vector256.Create(weights.GetElement(1));
        Vector256<float> w2 = Vector256.Create(weights.GetElement(2)), w3 = Vector256.Create(weights.GetElement(3));
        float* x1 = x + rowStride, x2 = x1 + rowStride, x3 = x2 + rowStride;
        for (int i = 0; i < length; i += Vector256<float>.Count)
        {
            Vector256<float> sum = Fma.MultiplyAdd(Avx.LoadVector256(x + i), w0, Avx.LoadVector256(destination + i));
            sum = Fma.MultiplyAdd(Avx.LoadVector256(x1 + i), w1, sum);
            sum = Fma.MultiplyAdd(Avx.LoadVector256(x2 + i), w2, sum);
            Avx.Store(destination + i, Fma.MultiplyAdd(Avx.LoadVector256(x3 + i), w3, sum));
        }
    }

    /// <summary>As <see cref="MultiplyAddFourRows(float*, int, Vector128{float}, float*, int)"/> with the rows in bfloat16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyAddFourRows(ushort* x, int rowStride, Vector128<float> weights, float* destination, int length)
    {
        Vector256<float> w0 = Vector256.Create(weights.GetElement(0)), w1 = Vector256.Create(weights.GetElement(1));
        Vector256<float> w2 = Vector256.Create(weights.GetElement(2)), w3 = Vector256.Create(weights.GetElement(3));
        ushort* x1 = x + rowStride, x2 = x1 + rowStride, x3 = x2 + rowStride;
        Prefetch(x + 4 * rowStride, length * sizeof(ushort), rowStride * sizeof(ushort));
        for (int i = 0; i < length; i += Vector256<float>.Count)
        {
            Vector256<float> sum = Fma.MultiplyAdd(Widen(x + i), w0, Avx.LoadVector256(destination + i));
            sum = Fma.MultiplyAdd(Widen(x1 + i), w1, sum);
            sum = Fma.MultiplyAdd(Widen(x2 + i), w2, sum);
            Avx.Store(destination + i, Fma.MultiplyAdd(Widen(x3 + i), w3, sum));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Dot(float* a, float* b, int length)
    {
        int i = 0;
        float result = 0;
        if (Vector256.IsHardwareAccelerated && length >= Vector256<float>.Count)
        {
            Vector256<float> even = Vector256<float>.Zero, odd = Vector256<float>.Zero;
            for (; i + 2 * Vector256<float>.Count <= length; i += 2 * Vector256<float>.Count)
            {
                even = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), even);
                odd = Vector256.FusedMultiplyAdd(
                    Vector256.Load(a + i + Vector256<float>.Count), Vector256.Load(b + i + Vector256<float>.Count), odd);
            }
            for (; i + Vector256<float>.Count <= length; i += Vector256<float>.Count)
            {
                even = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), even);
            }
            result = Vector256.Sum(even + odd);
        }
        for (; i < length; i++)
        {
            result += a[i] * b[i];
        }
        return result;
    }

    /// <summary>a . b with b in bfloat16: a bfloat16 is a float32's top half, so widening is a 16-bit shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Dot(float* a, ushort* b, int length)
    {
        int i = 0;
        float result = 0;
        if (Vector256.IsHardwareAccelerated && length >= Vector256<float>.Count)
        {
            Vector256<float> sum = Vector256<float>.Zero;
            for (; i + Vector256<float>.Count <= length; i += Vector256<float>.Count)
            {
                sum = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Widen(b + i), sum);
            }
            result = Vector256.Sum(sum);
        }
        for (; i < length; i++)
        {
            result += a[i] * BitConverter.UInt32BitsToSingle((uint)b[i] << 16);
        }
        return result;
    }

    /// <summary>destination += x * weight, x in bfloat16.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyAdd(ushort* x, float weight, float* destination, int length)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> scale = Vector256.Create(weight);
            for (; i + Vector256<float>.Count <= length; i += Vector256<float>.Count)
            {
                Vector256.FusedMultiplyAdd(Widen(x + i), scale, Vector256.Load(destination + i)).Store(destination + i);
            }
        }
        for (; i < length; i++)
        {
            destination[i] += BitConverter.UInt32BitsToSingle((uint)x[i] << 16) * weight;
        }
    }

    /// <summary>Eight bfloat16 values as float32: on AVX2 one zero-extending load and a shift.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen(ushort* p) => Avx2.IsSupported
        ? Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle()
        : Vector256.ShiftLeft(Vector256.WidenLower(Vector128.Load(p).AsUInt16().ToVector256()).AsUInt32(), 16).AsSingle();

    /// <summary>destination += x * weight</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyAdd(float* x, float weight, float* destination, int length)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> scale = Vector256.Create(weight);
            for (; i + Vector256<float>.Count <= length; i += Vector256<float>.Count)
            {
                Vector256.FusedMultiplyAdd(Vector256.Load(x + i), scale, Vector256.Load(destination + i)).Store(destination + i);
            }
        }
        for (; i < length; i++)
        {
            destination[i] += x[i] * weight;
        }
    }
}

/// <summary>
/// Host-side description of a decode group for <see cref="PagedDecodeAttention"/>: how many keys each
/// sequence has and which blocks hold them.
/// </summary>
public sealed class DecodeContexts
{
    /// <param name="keyCounts">Per sequence: its context length, the current token included.</param>
    /// <param name="blockTables">Per sequence, <paramref name="blocksPerSequence"/> block ids (unused tail entries are ignored).</param>
    public DecodeContexts(int[] keyCounts, int[] blockTables, int blocksPerSequence)
    {
        Debug.Assert(blockTables.Length == keyCounts.Length * blocksPerSequence);
        KeyCounts = keyCounts;
        BlockTables = blockTables;
        BlocksPerSequence = blocksPerSequence;
    }

    public int[] KeyCounts { get; }
    public int[] BlockTables { get; }
    public int BlocksPerSequence { get; }
}
