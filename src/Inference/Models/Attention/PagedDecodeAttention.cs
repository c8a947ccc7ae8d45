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
/// With sequences enough to keep every thread busy each thread takes whole sequences. With fewer,
/// each context is cut into parts of whole blocks, each part attended alone (its own score maximum,
/// sum and unnormalised output) and the parts combined after, as flash-decoding does: one long
/// context is then read by every thread, each streaming whole rows. (Splitting by heads instead
/// left each thread reading half of every row, which the prefetchers follow far worse.)
/// Threads run through <see cref="KernelThreads"/>, in libtorch's own OpenMP team: a .NET
/// thread-pool worker beside libtorch's spinning workers made the call slower and far less steady
/// than one thread.
/// </remarks>
internal static unsafe class PagedDecodeAttention
{
    /// <summary>Parts per thread when a few sequences are split: enough that a thread running late leaves little to wait on.</summary>
    private const int PartsPerThread = 4;

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
        job.PartBlocks = PartBlocks(contexts, cache.BlockSize);
        job.Attend();
        return output;
    }

    /// <summary>
    /// Blocks per part: whole sequences (<see cref="int.MaxValue"/>) when they share out evenly between
    /// the threads or are enough to even out, otherwise the longest context cut into about
    /// <see cref="PartsPerThread"/> parts per thread between the sequences.
    /// </summary>
    private static int PartBlocks(DecodeContexts contexts, int blockSize)
    {
        int sequences = contexts.KeyCounts.Length, threads = KernelThreads.Count;
        if (sequences % threads == 0 || sequences >= 2 * threads)
        {
            return int.MaxValue;
        }
        int longest = (contexts.KeyCounts.Max() + blockSize - 1) / blockSize;
        int partsPerSequence = (PartsPerThread * threads + sequences - 1) / sequences;
        return Math.Max(1, (longest + partsPerSequence - 1) / partsPerSequence);
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

        private readonly int Width => HeadCount * HeadSize;

        /// <summary>Blocks in a part: every block of a sequence when threads take whole sequences.</summary>
        public int PartBlocks;

        /// <summary>bfloat16 rows read 16 elements at a time as even and odd halves (<see cref="Bf16Kernels.ToPairOrder"/>).</summary>
        private readonly bool Paired => ElementSize == 2 && PairedReads(HeadSize);

        private readonly int PartCount(int sequence)
        {
            int blocks = (Contexts.KeyCounts[sequence] + BlockSize - 1) / BlockSize;
            return PartBlocks == int.MaxValue ? 1 : Math.Max(1, (blocks + PartBlocks - 1) / PartBlocks);
        }

        // Optimized at once: these run a few hundred times a step, and tier-0 code
        // (before tiering catches up) is several times slower on vector code.
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void Attend()
        {
            Job job = this;
            int sequences = Contexts.KeyCounts.Length;
            if (PartBlocks == int.MaxValue)
            {
                KernelThreads.ForRanges(sequences, 1, (start, end) =>
                {
                    for (int sequence = start; sequence < end; sequence++)
                    {
                        job.AttendWhole(sequence);
                    }
                });
                return;
            }
            // Too few: the threads split the parts, and each sequence's parts are combined after.
            var firstPart = new int[sequences + 1];
            for (int sequence = 0; sequence < sequences; sequence++)
            {
                firstPart[sequence + 1] = firstPart[sequence] + PartCount(sequence);
            }
            int parts = firstPart[sequences];
            var partSequence = new int[parts];
            for (int sequence = 0; sequence < sequences; sequence++)
            {
                partSequence.AsSpan(firstPart[sequence], firstPart[sequence + 1] - firstPart[sequence]).Fill(sequence);
            }
            int partFloats = Width + 2 * HeadCount;
            float[] partials = ArrayPool<float>.Shared.Rent(parts * partFloats);
            try
            {
                fixed (float* partialValues = partials)
                {
                    float* results = partialValues;
                    KernelThreads.ForRanges(parts, 1, (start, end) =>
                    {
                        for (int part = start; part < end; part++)
                        {
                            int sequence = partSequence[part];
                            job.AttendPart(sequence, part - firstPart[sequence], new PartResult(results + (long)part * partFloats, job.Width, job.HeadCount));
                        }
                    });
                    for (int sequence = 0; sequence < sequences; sequence++)
                    {
                        Combine(sequence, results + (long)firstPart[sequence] * partFloats, firstPart[sequence + 1] - firstPart[sequence]);
                    }
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(partials);
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void AttendWhole(int sequence)
        {
            int parts = PartCount(sequence), partFloats = Width + 2 * HeadCount;
            float[] partials = ArrayPool<float>.Shared.Rent(parts * partFloats);
            try
            {
                fixed (float* results = partials)
                {
                    for (int part = 0; part < parts; part++)
                    {
                        AttendPart(sequence, part, new PartResult(results + (long)part * partFloats, Width, HeadCount));
                    }
                    Combine(sequence, results, parts);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(partials);
            }
        }

        /// <summary>
        /// The sequence's output from its parts' results: out_h = Σ_p e^(m_p − m) o_p / Σ_p e^(m_p − m) s_p,
        /// m the largest m_p.
        /// </summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void Combine(int sequence, float* results, int parts)
        {
            int partFloats = Width + 2 * HeadCount;
            float* output = Output + (long)sequence * Width;
            for (int head = 0; head < HeadCount; head++)
            {
                var headOutput = new Span<float>(output + head * HeadSize, HeadSize);
                var first = new PartResult(results, Width, HeadCount);
                if (parts == 1)
                {
                    TensorPrimitives.Multiply(first.Outputs.Slice(head * HeadSize, HeadSize), 1f / first.Sums[head], headOutput);
                    if (Paired)
                    {
                        Bf16Kernels.FromPairOrder(output + head * HeadSize, HeadSize);
                    }
                    continue;
                }
                float largest = first.Maxima[head];
                for (int part = 1; part < parts; part++)
                {
                    largest = MathF.Max(largest, new PartResult(results + (long)part * partFloats, Width, HeadCount).Maxima[head]);
                }
                float sum = 0f;
                headOutput.Clear();
                for (int part = 0; part < parts; part++)
                {
                    var result = new PartResult(results + (long)part * partFloats, Width, HeadCount);
                    float weight = MathF.Exp(result.Maxima[head] - largest);
                    sum += weight * result.Sums[head];
                    TensorPrimitives.MultiplyAdd(result.Outputs.Slice(head * HeadSize, HeadSize), weight, headOutput, headOutput);
                }
                TensorPrimitives.Multiply(headOutput, 1f / sum, headOutput);
                if (Paired)
                {
                    Bf16Kernels.FromPairOrder(output + head * HeadSize, HeadSize);
                }
            }
        }

        // All heads of a part together, a cache row at a time: a row holds every head's key (or value)
        // of one token side by side, and a block's rows are adjacent, so the part streams through in
        // address order. Head by head it would be read in 256-byte pieces a row apart, which the
        // prefetchers follow far worse (docs/benchmarks.md, "Attention").
        /// <summary>Keys [part × PartBlocks × BlockSize, …) of one sequence: its unnormalised output, score maxima and sums.</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void AttendPart(int sequence, int part, PartResult result)
        {
            int firstKey = part * PartBlocks * BlockSize;
            int keyCount = Math.Min(Contexts.KeyCounts[sequence] - firstKey, PartBlocks == int.MaxValue ? int.MaxValue : PartBlocks * BlockSize);
            float[] scratch = ArrayPool<float>.Shared.Rent(HeadCount * keyCount + Width);
            try
            {
                fixed (float* scratchValues = scratch)
                {
                    float* query = Queries + sequence * QueryRowStride;
                    if (Paired)
                    {
                        float* reordered = scratchValues + HeadCount * keyCount;
                        new ReadOnlySpan<float>(query, Width).CopyTo(new Span<float>(reordered, Width));
                        Bf16Kernels.ToPairOrder(reordered, Width);
                        query = reordered;
                    }
                    var scores = new Span<float>(scratchValues, HeadCount * keyCount);
                    int firstBlock = firstKey / BlockSize;
                    ReadOnlySpan<int> blocks = Contexts.BlockTables.AsSpan(sequence * Contexts.BlocksPerSequence + firstBlock, (keyCount + BlockSize - 1) / BlockSize);
                    Score(query, blocks, keyCount, scores);
                    // Softmax per head without the division: Combine divides by the sums of all parts.
                    for (int head = 0; head < HeadCount; head++)
                    {
                        Span<float> headScores = scores.Slice(head * keyCount, keyCount);
                        float max = TensorPrimitives.Max(headScores);
                        TensorPrimitives.Add(headScores, -max, headScores);
                        TensorPrimitives.Exp(headScores, headScores);
                        result.Maxima[head] = max;
                        result.Sums[head] = TensorPrimitives.Sum(headScores);
                    }
                    result.Outputs.Clear();
                    Weigh(scores, blocks, keyCount, result.Outputs);
                }
            }
            finally
            {
                ArrayPool<float>.Shared.Return(scratch);
            }
        }

        /// <summary>scores[h × keyCount + t] = q_h · k_{t,h} / √hs over the part's keys, which start at <paramref name="blocks"/>[0].</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void Score(float* query, ReadOnlySpan<int> blocks, int keyCount, Span<float> scores)
        {
            int rowWidth = KvHeadCount * HeadSize;                                       // a cache row: n_kv heads
            // Query heads kvHead * groupSize .. + groupSize - 1 read KV head kvHead (one each without GQA).
            int groupSize = HeadCount / KvHeadCount;
            bool paired = Paired, fourRows = paired || ElementSize == 4 && FourRowsAtOnce(HeadSize);
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
                    for (int kvHead = 0, head = 0; kvHead < KvHeadCount; kvHead++)
                    {
                        byte* keyHead = key + (long)kvHead * HeadSize * ElementSize;
                        for (int member = 0; member < groupSize; member++, head++)
                        {
                            Vector128<float> dots = paired
                                ? DotFourPairedRows(query + head * HeadSize, (ushort*)keyHead, rowWidth, HeadSize)
                                : DotFourRows(query + head * HeadSize, (float*)keyHead, rowWidth, HeadSize);
                            (dots * Scale).CopyTo(scores.Slice(head * keyCount + start + offset, 4));
                        }
                    }
                }
                for (; offset < inBlock; offset++)
                {
                    byte* key = block + (long)offset * rowWidth * ElementSize;
                    for (int kvHead = 0, head = 0; kvHead < KvHeadCount; kvHead++)
                    {
                        byte* keyHead = key + (long)kvHead * HeadSize * ElementSize;
                        for (int member = 0; member < groupSize; member++, head++)
                        {
                            float dot = paired ? DotPaired(query + head * HeadSize, (ushort*)keyHead, HeadSize)
                                : ElementSize == 2 ? Dot(query + head * HeadSize, (ushort*)keyHead, HeadSize)
                                : Dot(query + head * HeadSize, (float*)keyHead, HeadSize);
                            scores[head * keyCount + start + offset] = dot * Scale;
                        }
                    }
                }
            }
        }

        /// <summary>out_h += Σ_t p_{h,t} v_{t,h} over the part's values (in pair order for paired reads).</summary>
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        private readonly void Weigh(Span<float> weights, ReadOnlySpan<int> blocks, int keyCount, Span<float> outputs)
        {
            int rowWidth = KvHeadCount * HeadSize;
            int groupSize = HeadCount / KvHeadCount;
            bool paired = Paired, fourRows = paired || ElementSize == 4 && FourRowsAtOnce(HeadSize);
            fixed (float* output = outputs)
            {
                for (int start = 0, blockIndex = 0; start < keyCount; start += BlockSize, blockIndex++)
                {
                    byte* block = (byte*)Values + (long)blocks[blockIndex] * BlockSize * rowWidth * ElementSize;
                    int inBlock = Math.Min(BlockSize, keyCount - start);
                    int offset = 0;
                    // Four rows per pass over a head's output: a quarter of the loads and stores of it.
                    for (; fourRows && offset + 4 <= inBlock; offset += 4)
                    {
                        byte* value = block + (long)offset * rowWidth * ElementSize;
                        for (int kvHead = 0, head = 0; kvHead < KvHeadCount; kvHead++)
                        {
                            byte* valueHead = value + (long)kvHead * HeadSize * ElementSize;
                            for (int member = 0; member < groupSize; member++, head++)
                            {
                                Vector128<float> rowWeights = Vector128.Create(weights.Slice(head * keyCount + start + offset, 4));
                                if (paired)
                                {
                                    MultiplyAddFourPairedRows((ushort*)valueHead, rowWidth, rowWeights, output + head * HeadSize, HeadSize);
                                }
                                else
                                {
                                    MultiplyAddFourRows((float*)valueHead, rowWidth, rowWeights, output + head * HeadSize, HeadSize);
                                }
                            }
                        }
                    }
                    for (; offset < inBlock; offset++)
                    {
                        byte* value = block + (long)offset * rowWidth * ElementSize;
                        for (int kvHead = 0, head = 0; kvHead < KvHeadCount; kvHead++)
                        {
                            byte* valueHead = value + (long)kvHead * HeadSize * ElementSize;
                            for (int member = 0; member < groupSize; member++, head++)
                            {
                                float weight = weights[head * keyCount + start + offset];
                                if (paired)
                                {
                                    MultiplyAddPaired((ushort*)valueHead, weight, output + head * HeadSize, HeadSize);
                                }
                                else if (ElementSize == 2)
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
            }
        }
    }

    /// <summary>One part's results side by side in a scratch row: outputs (nh × hs), then score maxima (nh), then sums (nh).</summary>
    private readonly struct PartResult(float* start, int width, int heads)
    {
        public Span<float> Outputs => new(start, width);

        public Span<float> Maxima => new(start + width, heads);

        public Span<float> Sums => new(start + width + heads, heads);
    }

    /// <summary>Whether the four-row kernels serve this head size (whole 256-bit vectors, AVX2 and FMA); bfloat16 rows also need <see cref="PairedReads"/>.</summary>
    private static bool FourRowsAtOnce(int headSize) => Avx2.IsSupported && Fma.IsSupported && headSize % Vector256<float>.Count == 0;

    /// <summary>Whether bfloat16 rows of this head size are read as pairs: whole 16-element steps, AVX2 and FMA.</summary>
    private static bool PairedReads(int headSize) => FourRowsAtOnce(headSize) && headSize % Bf16Kernels.StepElements == 0;

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

    /// <summary>As <see cref="DotFourRows(float*, float*, int, int)"/> with the rows in bfloat16 and q in pair order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static Vector128<float> DotFourPairedRows(float* q, ushort* k, int rowStride, int length)
    {
        Vector256<float> e0 = Vector256<float>.Zero, e1 = Vector256<float>.Zero, e2 = Vector256<float>.Zero, e3 = Vector256<float>.Zero;
        Vector256<float> o0 = Vector256<float>.Zero, o1 = Vector256<float>.Zero, o2 = Vector256<float>.Zero, o3 = Vector256<float>.Zero;
        ushort* k1 = k + rowStride, k2 = k1 + rowStride, k3 = k2 + rowStride;
        Prefetch(k + 4 * rowStride, length * sizeof(ushort), rowStride * sizeof(ushort));
        for (int i = 0; i < length; i += Bf16Kernels.StepElements)
        {
            Vector256<float> qEven = Avx.LoadVector256(q + i), qOdd = Avx.LoadVector256(q + i + 8);
            Vector256<uint> r0 = Avx.LoadVector256((uint*)(k + i)), r1 = Avx.LoadVector256((uint*)(k1 + i));
            Vector256<uint> r2 = Avx.LoadVector256((uint*)(k2 + i)), r3 = Avx.LoadVector256((uint*)(k3 + i));
            e0 = Fma.MultiplyAdd(qEven, Bf16Kernels.Even(r0), e0);
            o0 = Fma.MultiplyAdd(qOdd, Bf16Kernels.Odd(r0), o0);
            e1 = Fma.MultiplyAdd(qEven, Bf16Kernels.Even(r1), e1);
            o1 = Fma.MultiplyAdd(qOdd, Bf16Kernels.Odd(r1), o1);
            e2 = Fma.MultiplyAdd(qEven, Bf16Kernels.Even(r2), e2);
            o2 = Fma.MultiplyAdd(qOdd, Bf16Kernels.Odd(r2), o2);
            e3 = Fma.MultiplyAdd(qEven, Bf16Kernels.Even(r3), e3);
            o3 = Fma.MultiplyAdd(qOdd, Bf16Kernels.Odd(r3), o3);
        }
        return SumEach(Avx.Add(e0, o0), Avx.Add(e1, o1), Avx.Add(e2, o2), Avx.Add(e3, o3));
    }

    /// <summary>q . k for one bfloat16 row, q in pair order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static float DotPaired(float* q, ushort* k, int length)
    {
        Vector256<float> even = Vector256<float>.Zero, odd = Vector256<float>.Zero;
        for (int i = 0; i < length; i += Bf16Kernels.StepElements)
        {
            Vector256<uint> row = Avx.LoadVector256((uint*)(k + i));
            even = Fma.MultiplyAdd(Avx.LoadVector256(q + i), Bf16Kernels.Even(row), even);
            odd = Fma.MultiplyAdd(Avx.LoadVector256(q + i + 8), Bf16Kernels.Odd(row), odd);
        }
        return Vector256.Sum(Avx.Add(even, odd));
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

    /// <summary>As <see cref="MultiplyAddFourRows(float*, int, Vector128{float}, float*, int)"/> with the rows in bfloat16 and the destination in pair order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyAddFourPairedRows(ushort* x, int rowStride, Vector128<float> weights, float* destination, int length)
    {
        Vector256<float> w0 = Vector256.Create(weights.GetElement(0)), w1 = Vector256.Create(weights.GetElement(1));
        Vector256<float> w2 = Vector256.Create(weights.GetElement(2)), w3 = Vector256.Create(weights.GetElement(3));
        ushort* x1 = x + rowStride, x2 = x1 + rowStride, x3 = x2 + rowStride;
        Prefetch(x + 4 * rowStride, length * sizeof(ushort), rowStride * sizeof(ushort));
        for (int i = 0; i < length; i += Bf16Kernels.StepElements)
        {
            Vector256<uint> r0 = Avx.LoadVector256((uint*)(x + i)), r1 = Avx.LoadVector256((uint*)(x1 + i));
            Vector256<uint> r2 = Avx.LoadVector256((uint*)(x2 + i)), r3 = Avx.LoadVector256((uint*)(x3 + i));
            Vector256<float> even = Fma.MultiplyAdd(Bf16Kernels.Even(r0), w0, Avx.LoadVector256(destination + i));
            Vector256<float> odd = Fma.MultiplyAdd(Bf16Kernels.Odd(r0), w0, Avx.LoadVector256(destination + i + 8));
            even = Fma.MultiplyAdd(Bf16Kernels.Even(r1), w1, even);
            odd = Fma.MultiplyAdd(Bf16Kernels.Odd(r1), w1, odd);
            even = Fma.MultiplyAdd(Bf16Kernels.Even(r2), w2, even);
            odd = Fma.MultiplyAdd(Bf16Kernels.Odd(r2), w2, odd);
            Avx.Store(destination + i, Fma.MultiplyAdd(Bf16Kernels.Even(r3), w3, even));
            Avx.Store(destination + i + 8, Fma.MultiplyAdd(Bf16Kernels.Odd(r3), w3, odd));
        }
    }

    /// <summary>destination += x * weight, x in bfloat16 and the destination in pair order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining | MethodImplOptions.AggressiveOptimization)]
    private static void MultiplyAddPaired(ushort* x, float weight, float* destination, int length)
    {
        Vector256<float> scale = Vector256.Create(weight);
        for (int i = 0; i < length; i += Bf16Kernels.StepElements)
        {
            Vector256<uint> row = Avx.LoadVector256((uint*)(x + i));
            Avx.Store(destination + i, Fma.MultiplyAdd(Bf16Kernels.Even(row), scale, Avx.LoadVector256(destination + i)));
            Avx.Store(destination + i + 8, Fma.MultiplyAdd(Bf16Kernels.Odd(row), scale, Avx.LoadVector256(destination + i + 8)));
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
