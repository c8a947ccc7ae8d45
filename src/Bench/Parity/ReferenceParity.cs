using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using static TorchSharp.torch;

namespace LlmServer.Bench.Parity;

/// <summary>
/// <c>llmserver bench parity</c>: every fixture model's reference.json (greedy continuations and their
/// logprobs from an independent implementation) against the serving engine on a chosen device and dtype,
/// all of a model's cases batched together, with one JSON result. It is the correctness half of a run on
/// new hardware (deploy/gpu): the test suite checks the same on the CPU, but needs the .NET SDK.
/// </summary>
/// <remarks>
/// Each case is checked two ways. Generated: the engine's own greedy continuation, token for token, and
/// its logprobs while it still follows the reference. Forced: the prompt and the reference continuation
/// sent as one prompt, whose prompt logprobs give every reference token's logprob however the greedy
/// choice went. Reduced precision flips near-ties in these random-weight models, so at bfloat16 or
/// int8 only the forced logprobs decide; float32 must match the continuation too.
/// </remarks>
public static class ReferenceParity
{
    public const string Usage = """
        Usage: llmserver bench parity --fixtures DIR [--device cpu|cuda|cuda:N] [--dtype float32|bfloat16|float16]
                                      [--quantization none|int8] [--kv-cache-dtype auto|float32|bfloat16] [--tolerance NATS] [--result-json FILE]
          --fixtures    a folder of fixture models (each a checkpoint folder with a reference.json), e.g. ../shared/fixtures/models
          --dtype, --quantization, --kv-cache-dtype   as serve takes them (on the CPU, bfloat16 is the weights' form; float16 is CUDA only)
          --tolerance   largest |logprob - reference| of a reference token [default: 0.002 at float32, 1.5 for int8 weights, 0.2 otherwise]
        Exit code 0 when every reference token's logprob, the prompt and continuation sent as one prompt, is within the tolerance
        (and at float32 the greedy continuation equals the reference, its logprobs within it too); 1 otherwise.
        """;

    public sealed record Options(string FixturesDirectory)
    {
        public string Device { get; init; } = "cpu";
        public ScalarType Dtype { get; init; } = ScalarType.Float32;
        public WeightFormat Weights { get; init; } = WeightFormat.Float32;
        public ScalarType? KvCacheDtype { get; init; }
        public double? Tolerance { get; init; }
        public string? ResultJson { get; init; }

        /// <summary>What float32 arithmetic leaves of an independent float64 reference, or what a reduced form may move a logprob.</summary>
        public double EffectiveTolerance => Tolerance ?? (FullPrecision ? 2e-3 : Weights == WeightFormat.Int8 ? 1.5 : 0.2);

        /// <summary>float32 weights and arithmetic: the greedy continuation itself must match.</summary>
        public bool FullPrecision => Dtype == ScalarType.Float32 && Weights == WeightFormat.Float32 && KvCacheDtype is null or ScalarType.Float32;
    }

    /// <summary>One model's cases against its reference.</summary>
    public sealed record ModelResult(string Model, int Cases, int GreedyEqual, int TextEqual, int Steps, int Top5Equal,
        double MaxLogprobError, double MaxForcedLogprobError, string? FirstMismatch, double Seconds, string? Error);

    public static async Task<int> RunCommandAsync(string[] args)
    {
        if (args.Any(a => a is "--help" or "-h"))
        {
            Console.WriteLine(Usage);
            return 0;
        }
        Options options;
        try
        {
            options = Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
        IReadOnlyList<ModelResult> results = await RunAsync(options);
        if (results.Count == 0)
        {
            Console.Error.WriteLine($"error: no folder under {options.FixturesDirectory} has a reference.json");
        }
        bool passed = results.Count > 0 && results.All(r => Passed(r, options));
        foreach (ModelResult result in results)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{result.Model}: {result.GreedyEqual}/{result.Cases} greedy equal, {result.Top5Equal}/{result.Steps} top-5 equal, " +
                $"largest logprob error {result.MaxLogprobError:G3} nats (forced: {result.MaxForcedLogprobError:G3}), {result.Seconds:F1} s{(result.Error is null ? "" : $", error: {result.Error}")}" +
                $"{(result.FirstMismatch is null ? "" : $", first mismatch: {result.FirstMismatch}")}"));
        }
        Console.WriteLine(passed ? "parity: passed" : "parity: FAILED");
        if (options.ResultJson is not null)
        {
            await File.WriteAllTextAsync(options.ResultJson, ToJson(options, results, passed).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        return passed ? 0 : 1;
    }

    public static Options Parse(string[] args)
    {
        if (args.Length % 2 != 0)
        {
            throw new ArgumentException("every flag takes a value");
        }
        var values = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i += 2)
        {
            if (args[i] is not ("--fixtures" or "--device" or "--dtype" or "--quantization" or "--kv-cache-dtype" or "--tolerance" or "--result-json"))
            {
                throw new ArgumentException($"unknown flag {args[i]}");
            }
            values[args[i]] = args[i + 1];
        }
        if (!values.TryGetValue("--fixtures", out string? fixtures) || !Directory.Exists(fixtures))
        {
            throw new ArgumentException("--fixtures must name an existing folder");
        }
        string device = values.GetValueOrDefault("--device", "cpu");
        bool cuda = device.StartsWith("cuda", StringComparison.Ordinal);
        string dtype = values.GetValueOrDefault("--dtype", "float32"), quantization = values.GetValueOrDefault("--quantization", "none");
        string kvCacheDtype = values.GetValueOrDefault("--kv-cache-dtype", "auto");
        if (dtype is not ("float32" or "bfloat16") && !(cuda && dtype == "float16"))
        {
            throw new ArgumentException($"--dtype: {dtype} is not float32 or bfloat16 (or float16 on CUDA)");
        }
        if (quantization is not "none" && !(quantization == "int8" && !cuda))
        {
            throw new ArgumentException($"--quantization: {quantization} is not none, or int8 on the CPU");
        }
        if (kvCacheDtype is not ("auto" or "float32" or "bfloat16"))
        {
            throw new ArgumentException($"--kv-cache-dtype: {kvCacheDtype} is not auto, float32 or bfloat16");
        }
        EnginePrecision precision = EnginePrecision.Resolve(device, dtype, quantization, kvCacheDtype);
        return new Options(fixtures)
        {
            Device = device,
            Dtype = precision.Dtype,
            Weights = precision.Weights,
            KvCacheDtype = precision.KvCacheDtype,
            Tolerance = !values.TryGetValue("--tolerance", out string? tolerance) ? null
                : double.TryParse(tolerance, NumberStyles.Float, CultureInfo.InvariantCulture, out double nats) && nats >= 0 ? nats
                : throw new ArgumentException($"--tolerance: {tolerance} is not a number of nats (0 or more)"),
            ResultJson = values.GetValueOrDefault("--result-json"),
        };
    }

    public static bool Passed(ModelResult result, Options options) =>
        result.Error is null && result.MaxForcedLogprobError <= options.EffectiveTolerance
        && (!options.FullPrecision || (result.GreedyEqual == result.Cases && result.MaxLogprobError <= options.EffectiveTolerance));

    /// <summary>Every model folder under the fixtures folder that has a reference.json, in name order.</summary>
    public static async Task<IReadOnlyList<ModelResult>> RunAsync(Options options)
    {
        var results = new List<ModelResult>();
        foreach (string directory in Directory.GetDirectories(options.FixturesDirectory).Order(StringComparer.Ordinal))
        {
            if (File.Exists(Path.Combine(directory, "reference.json")))
            {
                results.Add(await RunModelAsync(directory, options));
            }
        }
        return results;
    }

    private static async Task<ModelResult> RunModelAsync(string directory, Options options)
    {
        string model = Path.GetFileName(directory);
        IReadOnlyList<ReferenceCase> cases = ReferenceCase.Load(Path.Combine(directory, "reference.json"));
        var clock = Stopwatch.StartNew();
        try
        {
            await using var engine = new EngineClient(new EngineOptions
            {
                ModelDirectory = directory,
                ServedModelName = model,
                Device = options.Device,
                Dtype = options.Dtype,
                Weights = options.Weights,
                KvCacheDtype = options.KvCacheDtype,
                KvCacheMemoryBytes = 64L << 20,
                Scheduler = new SchedulerOptions { MaxNumSeqs = Math.Max(1, cases.Count) },
            });
            Task<(List<GeneratedToken> Tokens, string Text)[]> generating = Task.WhenAll(cases.Select((c, i) => GenerateAsync(engine, $"{model}-{i}", c)));
            Task<double[][]> forcing = Task.WhenAll(cases.Select((c, i) => ForcedLogprobsAsync(engine, $"{model}-forced-{i}", c)));
            return Compare(model, cases, await generating, await forcing, clock.Elapsed.TotalSeconds);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // The whole chain: where libtorch failed to load, TorchSharp's own message is two levels down.
            string message = string.Join(" <- ", Chain(e).Select(inner => inner.Message));
            return new ModelResult(model, cases.Count, 0, 0, 0, 0, double.PositiveInfinity, double.PositiveInfinity, null, clock.Elapsed.TotalSeconds, message);
        }
    }

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        for (Exception? current = exception; current is not null; current = current.InnerException)
        {
            yield return current;
        }
    }

    /// <summary>The logprob of each reference token, the prompt and the reference continuation sent as one prompt.</summary>
    private static async Task<double[]> ForcedLogprobsAsync(EngineClient engine, string id, ReferenceCase reference)
    {
        int[] sequence = [.. reference.PromptIds, .. reference.GreedyIds];
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = 1, IgnoreEos = true, PromptLogprobs = 0 };
        IReadOnlyList<PromptTokenLogprob?>? promptLogprobs = null;
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission(id, sequence, sampling)))
        {
            if (generated.ErrorMessage is not null)
            {
                throw new InvalidOperationException(generated.ErrorMessage);
            }
            promptLogprobs ??= generated.PromptLogprobs;
        }
        if (promptLogprobs is null || promptLogprobs.Count != sequence.Length)
        {
            throw new InvalidOperationException("the engine gave no logprob for every prompt position");
        }
        return reference.GreedyIds.Select((_, step) => (double)(promptLogprobs[reference.PromptIds.Length + step]?.Logprob ?? float.NaN)).ToArray();
    }

    private static async Task<(List<GeneratedToken> Tokens, string Text)> GenerateAsync(EngineClient engine, string id, ReferenceCase reference)
    {
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = reference.GreedyIds.Length, IgnoreEos = true, Logprobs = 5 };
        var tokens = new List<GeneratedToken>();
        string text = "";
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission(id, reference.PromptIds, sampling)))
        {
            if (generated.ErrorMessage is not null)
            {
                throw new InvalidOperationException(generated.ErrorMessage);
            }
            tokens.AddRange(generated.Tokens);
            text += generated.TextDelta;
        }
        return (tokens, text);
    }

    /// <summary>Logprobs are compared while the continuation still follows the reference; past a differing token they mean other things.</summary>
    public static ModelResult Compare(string model, IReadOnlyList<ReferenceCase> cases, IReadOnlyList<(List<GeneratedToken> Tokens, string Text)> generated,
        IReadOnlyList<double[]> forced, double seconds)
    {
        int greedyEqual = 0, textEqual = 0, steps = 0, top5Equal = 0;
        double maxError = 0, maxForcedError = 0;
        string? firstMismatch = null;
        for (int c = 0; c < cases.Count; c++)
        {
            ReferenceCase reference = cases[c];
            for (int step = 0; step < reference.GreedyLogprobs.Length; step++)
            {
                maxForcedError = Math.Max(maxForcedError, Math.Abs(forced[c][step] - reference.GreedyLogprobs[step]));
            }
            List<GeneratedToken> tokens = generated[c].Tokens;
            bool equal = tokens.Select(t => t.TokenId).SequenceEqual(reference.GreedyIds);
            greedyEqual += equal ? 1 : 0;
            textEqual += generated[c].Text == reference.GreedyText ? 1 : 0;
            for (int step = 0; step < Math.Min(tokens.Count, reference.GreedyIds.Length); step++)
            {
                if (tokens[step].TokenId != reference.GreedyIds[step])
                {
                    firstMismatch ??= $"case {c}, token {step}: {tokens[step].TokenId} where the reference has {reference.GreedyIds[step]}";
                    break;
                }
                steps++;
                maxError = Math.Max(maxError, Math.Abs((double)(tokens[step].Logprob ?? float.NaN) - reference.GreedyLogprobs[step]));
                if (tokens[step].TopLogprobs?.Select(t => t.TokenId).SequenceEqual(reference.GreedyTop5Ids[step]) == true)
                {
                    top5Equal++;
                }
            }
            if (!equal && tokens.Count != reference.GreedyIds.Length)
            {
                firstMismatch ??= $"case {c}: {tokens.Count} tokens where the reference has {reference.GreedyIds.Length}";
            }
        }
        return new ModelResult(model, cases.Count, greedyEqual, textEqual, steps, top5Equal, Finite(maxError), Finite(maxForcedError), firstMismatch, seconds, null);
    }

    /// <summary>A NaN (a missing logprob) counts as the worst error.</summary>
    private static double Finite(double error) => double.IsNaN(error) ? double.PositiveInfinity : error;

    private static JsonObject ToJson(Options options, IReadOnlyList<ModelResult> results, bool passed) => new()
    {
        ["device"] = options.Device,
        ["dtype"] = options.Dtype.ToString().ToLowerInvariant(),
        ["weights"] = options.Weights.ToString().ToLowerInvariant(),
        ["kv_cache_dtype"] = options.KvCacheDtype?.ToString().ToLowerInvariant() ?? "auto",
        ["tolerance_nats"] = options.EffectiveTolerance,
        ["passed"] = passed,
        ["models"] = new JsonArray(results.Select(r => (JsonNode)new JsonObject
        {
            ["model"] = r.Model,
            ["cases"] = r.Cases,
            ["greedy_equal"] = r.GreedyEqual,
            ["text_equal"] = r.TextEqual,
            ["steps_compared"] = r.Steps,
            ["top5_equal"] = r.Top5Equal,
            ["max_logprob_error"] = double.IsFinite(r.MaxLogprobError) ? r.MaxLogprobError : null,
            ["max_forced_logprob_error"] = double.IsFinite(r.MaxForcedLogprobError) ? r.MaxForcedLogprobError : null,
            ["first_mismatch"] = r.FirstMismatch,
            ["seconds"] = Math.Round(r.Seconds, 3),
            ["error"] = r.Error,
            ["passed"] = Passed(r, options),
        }).ToArray()),
    };
}
