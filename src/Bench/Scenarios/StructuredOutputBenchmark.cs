using System.Globalization;
using System.Text;
using System.Text.Json;
using LlmServer.Bench.LoadTest;
using LlmServer.Bench.StructuredOutput;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Bench.Scenarios;

/// <summary>
/// <c>llmserver bench structured --model DIR</c>: what constrained decoding (response_format json_schema, issue 16)
/// costs: in-process, the time to compile a schema and to find it compiled, the model's token trie, and the
/// mask of one constrained row per token inside string values and elsewhere; then, through a server started as a
/// child process (or the suite's), the output rate of a batch with a quarter of its rows constrained against the
/// same batch all free. Writes a JSON file and prints a summary.
/// </summary>
public static class StructuredOutputBenchmark
{
    public sealed record Options(string ModelDirectory, string ResultPath)
    {
        public int Port { get; init; } = 8768;
        public int Concurrency { get; init; } = 32;
        public int ConstrainedRows { get; init; } = 8;
        public int MaxTokens { get; init; } = 128;
        public int Rounds { get; init; } = 2;
    }

    public sealed record Result(
        string Model,
        IReadOnlyList<GrammarCosts.CompileCost> Compile,
        GrammarCosts.TrieCost Trie,
        IReadOnlyList<GrammarCosts.MaskCost> Masks,
        ConstrainedThroughput.Result Throughput);

    private const string Usage = "Usage: llmserver bench structured --model DIR [--result-json FILE (bench-structured.json)] [--port N (8768)] " +
        "[--concurrency C (32)] [--constrained-rows N (8)] [--max-tokens N (128)] [--rounds N (2)]";

    /// <summary>The command's flags as options.</summary>
    /// <exception cref="ArgumentException">A flag is unknown, lacks its value, or its value is out of range; the message names it.</exception>
    public static Options ParseArguments(IReadOnlyList<string> args)
    {
        var values = new Dictionary<string, string>();
        string[] known = ["--model", "--result-json", "--port", "--concurrency", "--constrained-rows", "--max-tokens", "--rounds"];
        for (int i = 0; i < args.Count; i += 2)
        {
            if (!known.Contains(args[i]))
            {
                throw new ArgumentException($"unknown flag '{args[i]}'");
            }

            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"{args[i]} needs a value");
            }

            values[args[i]] = args[i + 1];
        }

        if (!values.TryGetValue("--model", out string? model))
        {
            throw new ArgumentException("--model is required");
        }

        int Number(string flag, int fallback, int min)
        {
            if (!values.TryGetValue(flag, out string? text))
            {
                return fallback;
            }

            if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value))
            {
                throw new ArgumentException($"{flag}: '{text}' is not a whole number");
            }

            return value >= min ? value : throw new ArgumentException($"{flag} must be at least {min}, not {value}");
        }

        var options = new Options(model, values.GetValueOrDefault("--result-json", "bench-structured.json"))
        {
            Port = Number("--port", 8768, 1),
            Concurrency = Number("--concurrency", 32, 1),
            ConstrainedRows = Number("--constrained-rows", 8, 1),
            MaxTokens = Number("--max-tokens", 128, 8),
            Rounds = Number("--rounds", 2, 1),
        };
        return options.ConstrainedRows <= options.Concurrency
            ? options
            : throw new ArgumentException($"--constrained-rows ({options.ConstrainedRows}) cannot exceed --concurrency ({options.Concurrency})");
    }

    /// <summary>The command: parses, runs against a child server, writes the JSON; 2 for bad arguments.</summary>
    public static async Task<int> RunCommandAsync(string[] args)
    {
        Options options;
        try
        {
            options = ParseArguments(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }

        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        Result result = await RunAsync(options, Console.Out, cancel.Token);
        await File.WriteAllTextAsync(options.ResultPath, JsonSerializer.Serialize(result, ServingBenchmarkResult.JsonOptions), cancel.Token);
        Console.WriteLine(Summary(result));
        Console.WriteLine($"Wrote {options.ResultPath}");
        return result.Throughput.Waves.Any(w => w.Failed > 0 || w.InvalidReplies > 0) ? 1 : 0;
    }

    /// <summary>Measures in-process, then starts a server as a child process for the batch throughput.</summary>
    public static async Task<Result> RunAsync(Options options, TextWriter log, CancellationToken cancellationToken)
    {
        await using ChildServer server = await ChildServer.StartAsync(options.ModelDirectory, options.Port, TextWriter.Null, cancellationToken);
        return await RunAsync(options, new Uri($"http://127.0.0.1:{options.Port}"), log, cancellationToken);
    }

    /// <summary>Measures in-process, then the batch throughput against the server at <paramref name="baseUrl"/>, which serves the same model.</summary>
    public static async Task<Result> RunAsync(Options options, Uri baseUrl, TextWriter log, CancellationToken cancellationToken)
    {
        log.WriteLine("Constrained decoding: compiling each schema cold and finding it cached...");
        List<GrammarCosts.CompileCost> compile = BenchmarkSchemas.All.Select(schema => GrammarCosts.MeasureCompile(schema)).ToList();

        ITokenizer tokenizer = ModelTokenizer.Load(options.ModelDirectory);
        log.WriteLine($"Building the token trie of the model's {tokenizer.VocabSize:N0}-token vocabulary...");
        (TokenTrie trie, GrammarCosts.TrieCost trieCost) = GrammarCosts.MeasureTrie(tokenizer);

        log.WriteLine("Masking each schema's document token by token...");
        IReadOnlyList<GrammarCosts.MaskCost> masks = GrammarCosts.MeasureMasks(BenchmarkSchemas.All, tokenizer, trie);

        ConstrainedThroughput.Result throughput = await ConstrainedThroughput.RunAsync(new ConstrainedThroughput.Options(baseUrl)
        {
            Concurrency = options.Concurrency,
            ConstrainedRows = options.ConstrainedRows,
            MaxTokens = options.MaxTokens,
            Rounds = options.Rounds,
        }, log, cancellationToken);
        return new Result(Path.GetFileName(Path.TrimEndingDirectorySeparator(options.ModelDirectory)), compile, trieCost, masks, throughput);
    }

    public static string Summary(Result result)
    {
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"================ Constrained decoding ({result.Model}) ================");
        text.AppendLine("schema      compile (median)  cached lookup   mask tokens  in string: mean / p99     structural: mean / p99");
        foreach (GrammarCosts.MaskCost mask in result.Masks)
        {
            GrammarCosts.CompileCost? compile = result.Compile.FirstOrDefault(c => c.Schema == mask.Schema);
            string compileText = compile is null ? "" : $"{compile.MedianCompileMicroseconds,9:F1} us";
            string lookupText = compile is null ? "" : $"{compile.MedianCachedLookupMicroseconds,9:F2} us";
            text.AppendLine(CultureInfo.InvariantCulture,
                $"{mask.Schema,-10} {compileText,16} {lookupText,14} {mask.Tokens,12}  " +
                $"{mask.InStringValue.Mean,9:F1} / {mask.InStringValue.P99,8:F1} us  {mask.Structural.Mean,9:F1} / {mask.Structural.P99,8:F1} us");
        }

        text.AppendLine(CultureInfo.InvariantCulture,
            $"token trie: {result.Trie.VocabSize:N0} tokens, {result.Trie.NodeCount:N0} nodes, built in {result.Trie.MedianBuildMs:F0} ms (median of {result.Trie.Builds})");
        ConstrainedThroughput.Result t = result.Throughput;
        double freeLength = Mean(t.Waves.Where(w => w.Kind == "unconstrained").Select(w => w.MeanCompletionTokens));
        double constrainedLength = Mean(t.Waves.Select(w => w.MeanCompletionTokensConstrained).OfType<double>());
        text.AppendLine(CultureInfo.InvariantCulture,
            $"batch of {t.Concurrency} (max_tokens {t.MaxTokens}): {t.UnconstrainedOutputTokensPerSecond:F1} output tok/s all free, " +
            $"{t.MixedOutputTokensPerSecond:F1} with {t.ConstrainedRows} constrained = {t.MixedOverUnconstrained:F3}x; " +
            $"mean tokens per row {freeLength:F1} free, {constrainedLength:F1} constrained; " +
            $"{t.Waves.Sum(w => w.Failed)} failed, {t.Waves.Sum(w => w.InvalidReplies)} invalid replies");
        return text.ToString();
    }

    private static double Mean(IEnumerable<double> values) => values.DefaultIfEmpty(0).Average();
}
