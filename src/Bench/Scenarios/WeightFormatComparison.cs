using System.Globalization;
using System.Text;
using LlmServer.Bench.Limits;
using LlmServer.Bench.LoadTest;
using LlmServer.Inference.Models;
using LlmServer.Inference.Quantization;

namespace LlmServer.Bench.Scenarios;

/// <summary>
/// <c>llmserver bench weight-forms --model DIR</c> (and <c>bench suite --weight-forms</c>): one model
/// served in each weight form, side by side in one run. Each form gets its own limits, measured
/// in-process in that form, and its own server, started as a child process with that form's flags:
/// single-stream tokens/s and TPOT against the time to read the weights once in that form, the
/// throughput at concurrency 32 against the rate of that form's own products at 256 rows, and the
/// server's resident memory.
/// </summary>
public static class WeightFormatComparison
{
    public sealed record Options(string ModelDirectory, IReadOnlyList<WeightFormat> Forms)
    {
        public int Port { get; init; } = 8767;
        public int InputLength { get; init; } = 128;
        public int OutputLength { get; init; } = 128;
        public int SingleStreamPrompts { get; init; } = 8;
        public int ThroughputPrompts { get; init; } = 64;
        public int ThroughputConcurrency { get; init; } = 32;
    }

    /// <param name="WeightBytesPerToken">What a decode step reads in this form (<see cref="ModelLimits.ServedWeightBytes"/>).</param>
    /// <param name="WeightReadFloorMs">Those bytes at the read bandwidth measured in the same process: the floor of a one-sequence step.</param>
    /// <param name="ProductsGflops256Rows">This form's own products over the model's matrices at 256 rows: its roof.</param>
    /// <param name="TpotOverReadFloor">The single stream's median TPOT over <paramref name="WeightReadFloorMs"/>.</param>
    /// <param name="ThroughputGflops">The arithmetic the concurrency-32 load did (prompt tokens skip the head) over its duration.</param>
    /// <param name="ThroughputOverRoof"><paramref name="ThroughputGflops"/> over <paramref name="ProductsGflops256Rows"/>.</param>
    /// <param name="ResidentBytesIdle">The server's resident set after a warm-up, before the loads.</param>
    /// <param name="ResidentBytesAfter">The same after both loads.</param>
    /// <param name="Weights">The form as <c>--forms</c> names it: float32, bfloat16 or int8.</param>
    public sealed record FormResult(
        string Weights,
        long WeightBytesPerToken,
        double WeightReadFloorMs,
        double ProductsGflops256Rows,
        double SingleStreamOutputTokensPerSecond,
        double SingleStreamTpotMedianMs,
        double TpotOverReadFloor,
        double ThroughputOutputTokensPerSecond,
        double ThroughputGflops,
        double ThroughputOverRoof,
        long ResidentBytesIdle,
        long ResidentBytesAfter,
        int Failed);

    public sealed record Result(string ModelDirectory, ModelShape Shape, int ThroughputConcurrency, IReadOnlyList<FormResult> Forms);

    /// <summary>The <c>serve</c> flags that load the model in <paramref name="form"/> (a reduced form computes in float32).</summary>
    public static string[] ServeFlags(WeightFormat form) => form switch
    {
        WeightFormat.Float32 => ["--dtype", "float32"],
        WeightFormat.BFloat16 => ["--dtype", "bfloat16"],
        WeightFormat.Int8 => ["--dtype", "float32", "--quantization", "int8"],
        _ => throw new ArgumentOutOfRangeException(nameof(form), form, "no serving flags for this weight form"),
    };

    /// <summary>"float32,bfloat16,int8" (any case, any order, no repeats) as forms.</summary>
    public static IReadOnlyList<WeightFormat> ParseForms(string list)
    {
        var forms = new List<WeightFormat>();
        foreach (string name in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (!Enum.TryParse(name, ignoreCase: true, out WeightFormat form) || !Enum.IsDefined(form) || int.TryParse(name, out _))
            {
                throw new ArgumentException($"unknown weight form '{name}' (expected float32, bfloat16 or int8)");
            }
            if (forms.Contains(form))
            {
                throw new ArgumentException($"weight form '{name}' is listed twice");
            }
            forms.Add(form);
        }
        return forms.Count > 0 ? forms : throw new ArgumentException("no weight form listed");
    }

    public static async Task<Result> RunAsync(Options options, TextWriter log, CancellationToken cancellationToken)
    {
        var rows = new List<FormResult>();
        ModelShape? shape = null;
        foreach (WeightFormat form in options.Forms)
        {
            log.WriteLine($"Weights in {form}: limits in-process...");
            ModelLimits limits = ModelLimits.Measure(options.ModelDirectory, contextLength: options.InputLength + options.OutputLength / 2, weightFormat: form);
            shape = limits.Shape;
            log.WriteLine($"  {limits.ServedWeightBytes:N0} bytes read per token, floor {limits.ServedWeightReadMs:F1} ms; products at 256 rows {limits.GemmGflops256Rows:F1} GFLOP/s");
            rows.Add(await ServeAndLoadAsync(options, form, limits, log, cancellationToken));
        }
        var result = new Result(options.ModelDirectory, shape!, options.ThroughputConcurrency, rows);
        log.WriteLine(Table(result));
        return result;
    }

    private static async Task<FormResult> ServeAndLoadAsync(Options options, WeightFormat form, ModelLimits limits, TextWriter log, CancellationToken cancellationToken)
    {
        string[] flags = [.. ServeFlags(form), "--max-num-seqs", options.ThroughputConcurrency.ToString(CultureInfo.InvariantCulture)];
        await using ChildServer server = await ChildServer.StartAsync(options.ModelDirectory, options.Port, TextWriter.Null, cancellationToken, flags);
        var baseUrl = new Uri($"http://127.0.0.1:{options.Port}");
        ServingBenchmarkOptions Load(int prompts, int concurrency) => new()
        {
            BaseUrl = baseUrl, NumPrompts = prompts, InputLength = options.InputLength, OutputLength = options.OutputLength,
            MaxConcurrency = concurrency, Seed = 1,
        };
        // /health answers before the model is loaded; the warm-up waits for it, and what serving any
        // request allocates once is then in the idle figure.
        await ServingBenchmark.RunAsync(Load(4, 4) with { OutputLength = Math.Min(8, options.OutputLength) }, null, cancellationToken);
        long idle = server.ResidentBytes;

        log.WriteLine($"  serving: {options.SingleStreamPrompts} requests at concurrency 1, then {options.ThroughputPrompts} at {options.ThroughputConcurrency}...");
        ServingBenchmarkResult single = await ServingBenchmark.RunAsync(Load(options.SingleStreamPrompts, 1), null, cancellationToken);
        ServingBenchmarkResult throughput = await ServingBenchmark.RunAsync(Load(options.ThroughputPrompts, options.ThroughputConcurrency), null, cancellationToken);
        long after = server.ResidentBytes;

        double gflops = limits.FlopsDone(throughput.TotalInputTokens, throughput.TotalOutputTokens) / throughput.DurationSeconds / 1e9;
        return new FormResult(form.ToString().ToLowerInvariant(), limits.ServedWeightBytes, limits.ServedWeightReadMs, limits.GemmGflops256Rows,
            single.OutputThroughput, single.TpotMs.Median, single.TpotMs.Median / limits.ServedWeightReadMs,
            throughput.OutputThroughput, gflops, gflops / limits.GemmGflops256Rows,
            idle, after, single.Failed + throughput.Failed);
    }

    /// <summary>One row per form, the figures the issue asks to see side by side, and each against float32's where it was measured.</summary>
    public static string Table(Result result)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"================ Weight forms side by side ({result.Shape.ModelType}, {result.Shape.ParameterCount:N0} parameters) ================");
        text.AppendLine(CultureInfo.InvariantCulture,
            $"| weights | bytes read per token | read floor, ms | 1 stream, tok/s | TPOT median, ms | TPOT / floor | c={result.ThroughputConcurrency}, tok/s | GFLOP/s done | of the form's 256-row products | RSS idle / after, MiB | failed |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        FormResult? baseline = result.Forms.FirstOrDefault(f => f.Weights == "float32");
        foreach (FormResult f in result.Forms)
        {
            string Relative(double value, double reference) => baseline is null || f == baseline ? "" : string.Create(CultureInfo.InvariantCulture, $" ({value / reference:F2}x)");
            text.AppendLine(CultureInfo.InvariantCulture,
                $"| {f.Weights} | {f.WeightBytesPerToken:N0} | {f.WeightReadFloorMs:F1} | " +
                $"{f.SingleStreamOutputTokensPerSecond:F1}{Relative(f.SingleStreamOutputTokensPerSecond, baseline?.SingleStreamOutputTokensPerSecond ?? 1)} | " +
                $"{f.SingleStreamTpotMedianMs:F1} | {f.TpotOverReadFloor:F2}x | " +
                $"{f.ThroughputOutputTokensPerSecond:F1}{Relative(f.ThroughputOutputTokensPerSecond, baseline?.ThroughputOutputTokensPerSecond ?? 1)} | " +
                $"{f.ThroughputGflops:F1} | {f.ThroughputOverRoof * 100:F1}% | {f.ResidentBytesIdle >> 20:N0} / {f.ResidentBytesAfter >> 20:N0} | {f.Failed} |");
        }
        return text.ToString();
    }
}
