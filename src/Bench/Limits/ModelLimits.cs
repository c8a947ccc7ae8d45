using System.Diagnostics;
using LlmServer.Inference.Engine;
using LlmServer.Inference.KvCache;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Bench.Limits;

/// <summary>
/// What the hardware allows for one model, measured in-process so a serving benchmark can be
/// judged against limits taken on the same machine in the same run:
/// the float GEMM rate over the model's own weight shapes, the time to read every weight once
/// (the floor of a batch-1 decode step), and the bare model's decode step without any serving.
/// </summary>
/// <param name="Weights">The form the projections were measured in; the products and decode steps use it.</param>
/// <param name="ServedWeightBytes">Bytes a decode step reads in that form: every projection and the head as served, the rest float32.</param>
/// <param name="ServedWeightReadMs">The floor of a batch-1 decode step in that form: <paramref name="ServedWeightBytes"/> at the read bandwidth <paramref name="WeightReadMs"/> measured.</param>
/// <param name="GemmGflops1Row">The products serving runs (packed for MKL, bfloat16 or int8), at 1 row.</param>
/// <param name="GemmGflops32Rows">The same at 32 rows, a batch of decoding sequences.</param>
/// <param name="GemmGflops256Rows">The same at 256 rows.</param>
/// <param name="TorchGemmGflops256Rows">TorchSharp's torch.mm at 256 rows as x W, the checkpoint's orientation.</param>
/// <param name="TorchGemmGflops256RowsWeightOnTheLeft">torch.mm at 256 rows as W^T x^T with an (out, in) copy.</param>
/// <param name="Shape">The model measured: what its KV cache holds per token follows from it.</param>
public sealed record ModelLimits(
    long Parameters,
    long BodyParameters,
    long HeadParameters,
    int ContextLength,
    double WeightReadMs,
    double GemmGflops1Row,
    double GemmGflops32Rows,
    double GemmGflops256Rows,
    double TorchGemmGflops256Rows,
    double TorchGemmGflops256RowsWeightOnTheLeft,
    double BareDecodeStepMs,
    double BareDecodeStep32Ms,
    int CpuThreads,
    MklDispatchOutcome MklDispatch,
    ModelShape Shape,
    WeightFormat Weights = WeightFormat.Float32,
    long ServedWeightBytes = 0,
    double ServedWeightReadMs = 0)
{
    /// <summary>
    /// The arithmetic serving does for a load: every token passes the body, but only generated tokens
    /// pass the LM head (a prompt's logits are not computed) and no token multiplies the position table.
    /// </summary>
    public double FlopsDone(long promptTokens, long generatedTokens) =>
        2.0 * BodyParameters * (promptTokens + generatedTokens) + 2.0 * HeadParameters * generatedTokens;

    public static ModelLimits Measure(string modelDirectory, int contextLength = 256, int repetitions = 20, WeightFormat weightFormat = WeightFormat.Float32)
    {
        MklDispatchOutcome mklDispatch = MklCpuDispatch.EnsureApplied();
        NativeMemoryTuning.KeepFreedMemoryForReuse();
        using ICausalLanguageModel model = ModelArchitectures.Load(modelDirectory, ScalarType.Float32, CPU);
        model.PrepareForServing(weightFormat);
        using var inference = inference_mode();
        List<Tensor> weights = ((torch.nn.Module)model).parameters().Select(p => (Tensor)p).ToList();

        double weightRead = MedianMs(repetitions, () =>
        {
            using var scope = NewDisposeScope();
            foreach (Tensor weight in weights)
            {
                weight.sum();
            }
        });

        // The matmuls the model runs per token: every 2-D weight plus the LM head. Serving multiplies
        // by them packed for MKL where it can (see MklPackedMatrix); torch.mm is measured beside it in
        // both orientations, x W with W (in, out) and W^T x^T with W^T (out, in) contiguous, as the
        // yardstick the issue defines (TorchSharp matmuls of the model's weight shapes).
        var matrices = model.TokenMatrices()
            .Select(m =>
            {
                Tensor transposed = m.Weight.t().contiguous();   // the other orientation, a copy freed below
                return m.StoredAsOutByIn
                    ? (InByOut: transposed, OutByIn: m.Weight, Copy: transposed, Packed: ServingMatrix.TryCreate(m.Weight, storedAsOutByIn: true, weightFormat), m.IsHead)
                    : (InByOut: m.Weight, OutByIn: transposed, Copy: transposed, Packed: ServingMatrix.TryCreate(m.Weight, storedAsOutByIn: false, weightFormat), m.IsHead);
            })
            .ToList();
        long matmulParameters = matrices.Sum(m => m.InByOut.numel());
        long head = matrices.Where(m => m.IsHead).Sum(m => m.InByOut.numel());
        long body = matmulParameters - head;
        // What a decode step reads: every weight once as the float32 read above, but each matrix (a tied head
        // is the embedding itself, counted once in both) in its serving form instead.
        long floatBytes = 4 * weights.Sum(w => w.numel());
        long servedBytes = floatBytes + matrices.Sum(m => m.Packed is { Format: not WeightFormat.Float32 } served
            ? served.Bytes - 4 * m.InByOut.numel() : 0);
        double Gemm(int rows, Func<Tensor, Tensor, Tensor, IServingMatrix?, Tensor> product)
        {
            Dictionary<long, Tensor> inputs = matrices
                .Select(m => m.InByOut.shape[0]).Distinct()
                .ToDictionary(width => width, width => randn(rows, width));
            double ms = MedianMs(Math.Max(3, repetitions / (rows >= 256 ? 4 : 1)), () =>
            {
                using var scope = NewDisposeScope();
                foreach ((Tensor inByOut, Tensor outByIn, _, IServingMatrix? packed, _) in matrices)
                {
                    product(inputs[inByOut.shape[0]], inByOut, outByIn, packed);
                }
            });
            foreach (Tensor input in inputs.Values)
            {
                input.Dispose();
            }
            return 2.0 * rows * matmulParameters / (ms / 1000) / 1e9;
        }
        static Tensor Served(Tensor x, Tensor inByOut, Tensor outByIn, IServingMatrix? packed) =>
            packed is not null ? packed.Multiply(x, bias: null) : x.matmul(inByOut);            // (rows, out)

        double gemm1 = Gemm(1, Served), gemm32 = Gemm(32, Served), gemm256 = Gemm(256, Served);
        double torch256 = Gemm(256, (x, inByOut, _, _) => x.matmul(inByOut));                   // (rows, out)
        double torch256Left = Gemm(256, (x, _, outByIn, _) => outByIn.mm(x.t()));               // (out, rows)
        // Freed before the bare decode steps, which should run with the memory serving has, no more.
        foreach (var matrix in matrices)
        {
            matrix.Copy.Dispose();
            matrix.Packed?.Dispose();
        }
        // A model with a short context (the test fixtures have 128 positions) is measured at the
        // longest context its position table allows for the prompt plus every decode step.
        contextLength = Math.Min(contextLength, model.Shape.MaxPositions - repetitions - 2);
        if (contextLength < 1)
        {
            throw new ArgumentException($"the model's {model.Shape.MaxPositions} positions leave no room for a prompt and {repetitions} decode steps");
        }
        double decode1 = BareDecodeMs(model, sequences: 1, contextLength, repetitions);
        double decode32 = BareDecodeMs(model, sequences: 32, contextLength, Math.Max(3, repetitions / 4));
        return new ModelLimits(model.Shape.ParameterCount, body, head, contextLength, weightRead, gemm1, gemm32, gemm256, torch256, torch256Left,
            decode1, decode32, torch.get_num_threads(), mklDispatch, model.Shape, weightFormat, servedBytes, weightRead * servedBytes / floatBytes);
    }

    /// <summary>
    /// One decode step of <paramref name="sequences"/> requests at the given context, through the
    /// same runner and paged cache the engine uses, but with no scheduler loop, sampling or HTTP.
    /// </summary>
    private static double BareDecodeMs(ICausalLanguageModel model, int sequences, int contextLength, int repetitions)
    {
        const int blockSize = 16;
        int blocksPerSequence = (contextLength + repetitions + 8 + blockSize) / blockSize;
        int blockCount = sequences * blocksPerSequence;
        var cache = new PagedKvCache(model.Shape, blockCount, blockSize, ScalarType.Float32, CPU);
        var blocks = new KvCacheManager(new BlockPool(blockCount), blockSize, enablePrefixCaching: false);
        var scheduler = new Scheduler(new SchedulerOptions { MaxNumSeqs = sequences, MaxNumBatchedTokens = sequences * contextLength }, blocks);
        var runner = new ModelRunner(model, cache, blocks, ownsModel: false);
        try
        {
            var random = new Random(0);
            for (int s = 0; s < sequences; s++)
            {
                int[] prompt = Enumerable.Range(0, contextLength).Select(_ => random.Next(0, model.Shape.VocabSize)).ToArray();
                scheduler.Add(new Request($"bench-{s}", prompt, new SamplingParameters { MaxTokens = repetitions + 8 }, s));
            }
            void Step()
            {
                SchedulerOutput output = scheduler.Schedule();
                IReadOnlyList<Request> sampled = runner.Execute(output).Sampling;
                scheduler.CommitStep(output);
                foreach (Request request in sampled)
                {
                    request.AppendOutputToken(random.Next(0, model.Shape.VocabSize));
                }
            }
            Step();   // prefill
            return MedianMs(repetitions, Step);
        }
        finally
        {
            runner.Dispose();
            cache.Dispose();
        }
    }

    private static double MedianMs(int repetitions, Action action)
    {
        action();
        var samples = new double[repetitions];
        for (int i = 0; i < repetitions; i++)
        {
            long start = Stopwatch.GetTimestamp();
            action();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(samples);
        return samples[repetitions / 2];
    }
}
