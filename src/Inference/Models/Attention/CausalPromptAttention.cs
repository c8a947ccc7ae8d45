using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.CompilerServices;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// Causal attention of one prompt over its own keys and values on the host: each head's scores and
/// outputs are two of MKL's float32 GEMMs, a block of queries at a time, with the softmax between
/// them in C#.
/// </summary>
/// <remarks>
/// libtorch's CPU SDPA reaches a small fraction of the core's multiply rate on a prompt's few hundred
/// tokens, and a batch of prompts spent about a tenth of its prefill there. A block of queries reads
/// the keys up to its last query only, so the causal mask wastes at most a block's triangle. The
/// blocks of all heads are shared out between the threads; MKL runs on one thread inside each.
/// </remarks>
internal static unsafe class CausalPromptAttention
{
    /// <summary>Queries per block: a block's scores (64 × prompt length floats) stay in L2 between its two products.</summary>
    private const int QueryBlock = 64;

    /// <summary>Whether <see cref="Run"/> serves these rows: float32 on the host, heads contiguous, MKL's GEMM at hand.</summary>
    public static bool Supports(Tensor queries, Tensor keys, Tensor values) =>
        MklPackedMatrix.CanMultiplyPlain && FastExponential.IsSupported
        && HeadsContiguous(queries) && HeadsContiguous(keys) && HeadsContiguous(values)
        && queries.shape[2] == keys.shape[2] && queries.shape[1] % keys.shape[1] == 0;

    private static bool HeadsContiguous(Tensor rows) =>
        rows.device_type == TorchSharp.DeviceType.CPU && rows.dtype == ScalarType.Float32 && rows.dim() == 3
        && rows.stride(2) == 1 && rows.stride(1) == rows.shape[2];

    /// <param name="queries">(T, nh, hs): the prompt's tokens in order, rows at any stride.</param>
    /// <param name="keys">(T, n_kv, hs); query head h reads key head h / (nh / n_kv).</param>
    /// <param name="values">(T, n_kv, hs)</param>
    /// <returns>(T, nh * hs)</returns>
    public static Tensor Run(Tensor queries, Tensor keys, Tensor values)
    {
        int tokens = (int)queries.shape[0], heads = (int)queries.shape[1], headSize = (int)queries.shape[2];
        int kvHeads = (int)keys.shape[1];
        Tensor output = empty([tokens, heads * headSize], ScalarType.Float32, CPU);         // (T, C)
        var job = new Job
        {
            Queries = (float*)TensorMemory.DataPointer(queries),
            QueryStride = checked((int)queries.stride(0)),
            Keys = (float*)TensorMemory.DataPointer(keys),
            KeyStride = checked((int)keys.stride(0)),
            Values = (float*)TensorMemory.DataPointer(values),
            ValueStride = checked((int)values.stride(0)),
            Output = (float*)TensorMemory.DataPointer(output),
            Tokens = tokens,
            HeadCount = heads,
            GroupSize = heads / kvHeads,
            HeadSize = headSize,
            Scale = 1f / MathF.Sqrt(headSize),
        };
        int blocks = (tokens + QueryBlock - 1) / QueryBlock;
        // Later blocks read more keys: they go first, so the short ones even out the threads' ends.
        KernelThreads.ForRanges(heads * blocks, 1, (start, end) =>
        {
            for (int item = start; item < end; item++)
            {
                job.AttendBlock(head: item % heads, block: blocks - 1 - item / heads);
            }
        });
        return output;
    }

    private struct Job
    {
        public float* Queries, Keys, Values, Output;
        public int QueryStride, KeyStride, ValueStride;
        public int Tokens, HeadCount, GroupSize, HeadSize;
        public float Scale;

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public readonly void AttendBlock(int head, int block)
        {
            int first = block * QueryBlock, rows = Math.Min(QueryBlock, Tokens - first);
            int keyCount = first + rows;                                                 // the block's last query sees them all
            int kvHead = head / GroupSize;
            float* scores = (_scores ??= new ScratchBuffer()).For<float>((long)rows * keyCount);
            // scores (rows, keyCount) = Q_h[first ..] · K_h[0 .. keyCount)ᵀ
            MklPackedMatrix.MultiplyRowMajor(Queries + (long)first * QueryStride + head * HeadSize, QueryStride,
                Keys + kvHead * HeadSize, KeyStride, rightTransposed: true, scores, keyCount, rows, keyCount, HeadSize, addToOutput: false);
            for (int row = 0; row < rows; row++)
            {
                var rowScores = new Span<float>(scores + (long)row * keyCount, keyCount);
                int visible = first + row + 1;                                           // keys 0 .. its own position
                Span<float> seen = rowScores[..visible];
                float max = TensorPrimitives.Max(seen);
                // e^((s − max) · scale) is the softmax's numerator of the scaled scores: the largest stays the largest.
                FastExponential.ExpOfShiftedAndScaled(seen, max, Scale, seen);
                float sum = TensorPrimitives.Sum(seen);
                TensorPrimitives.Multiply(seen, 1f / sum, seen);
                rowScores[visible..].Clear();
            }
            // O_h[first ..] (rows, hs) = P (rows, keyCount) · V_h[0 .. keyCount)
            MklPackedMatrix.MultiplyRowMajor(scores, keyCount, Values + kvHead * HeadSize, ValueStride, rightTransposed: false,
                Output + (long)first * HeadCount * HeadSize + head * HeadSize, HeadCount * HeadSize, rows, HeadSize, keyCount, addToOutput: false);
        }
    }

    /// <summary>A block's scores, one buffer per thread.</summary>
    [ThreadStatic]
    private static ScratchBuffer? _scores;
}
