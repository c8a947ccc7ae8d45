using System.Globalization;
using LlmServer.Bench.Limits;
using LlmServer.Bench.Parity;
using LlmServer.Bench.LoadTest;
using LlmServer.Bench.Scenarios;
using LlmServer.Inference.Quantization;

namespace LlmServer.Bench;

/// <summary>
/// <c>llmserver bench ...</c>: a load test against a running server (the default), or one of
/// <c>suite</c> (every serving target in one run, server included), <c>limits</c> (the model's
/// in-process limits), <c>weight-forms</c> (each weight form side by side), <c>soak</c> (a timed mixed load), <c>large-bodies</c> (big and adversarial
/// bodies, one build against another), <c>structured</c> (what constrained decoding costs) and <c>parity</c> (the fixtures'
/// reference continuations through the engine, on any device). <c>bench random-model</c> (a random-weight checkpoint to
/// benchmark with) is the CLI's own <c>random-model</c> command, which the CLI answers before it
/// gets here: this project knows nothing of the server's commands.
/// </summary>
public static class BenchCommands
{
    public static async Task<int> RunAsync(string[] args)
    {
        string verb = args.Length > 0 ? args[0] : "";
        string[] rest = args.Length > 0 ? args[1..] : [];
        switch (verb)
        {
            case "limits":
                if (rest.Length is not (2 or 4) || rest[0] != "--model" || (rest.Length == 4 && (rest[2] != "--weights" || !Enum.TryParse(rest[3], ignoreCase: true, out WeightFormat _))))
                {
                    Console.Error.WriteLine("Usage: llmserver bench limits --model DIR [--weights float32|bfloat16|int8]");
                    return 2;
                }
                Console.WriteLine(ModelLimits.Measure(rest[1], weightFormat: rest.Length == 4 ? Enum.Parse<WeightFormat>(rest[3], ignoreCase: true) : WeightFormat.Float32));
                return 0;
            case "suite":
                return await RunSuiteAsync(rest);
            case "weight-forms":
                return await RunWeightFormsAsync(rest);
            case "soak":
                return await RunSoakAsync(rest);
            case "large-bodies":
                return await RunLargeBodiesAsync(rest);
            case "structured":
                return await StructuredOutputBenchmark.RunCommandAsync(rest);
            case "parity":
                return await ReferenceParity.RunCommandAsync(rest);
            default:
                return await BenchCommand.RunAsync(args);
        }
    }

    private static async Task<int> RunSuiteAsync(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i]] = args[i + 1];
        }
        if (!values.TryGetValue("--model", out string? model) || args.Length % 2 != 0)
        {
            Console.Error.WriteLine("Usage: llmserver bench suite --model DIR [--result-json FILE] [--port N] [--memory-requests N] [--weight-forms float32,bfloat16,int8]");
            return 2;
        }
        IReadOnlyList<WeightFormat>? weightForms = null;
        if (values.TryGetValue("--weight-forms", out string? forms))
        {
            try
            {
                weightForms = WeightFormatComparison.ParseForms(forms);
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine($"error: {e.Message}");
                return 2;
            }
        }
        var options = new BenchmarkSuite.Options(model, values.GetValueOrDefault("--result-json", "bench-suite.json"))
        {
            Port = int.Parse(values.GetValueOrDefault("--port", "8765")),
            MemoryRequests = int.Parse(values.GetValueOrDefault("--memory-requests", "2000")),
            WeightForms = weightForms,
        };
        if (options.MemoryRequests <= 500)
        {
            Console.Error.WriteLine("error: --memory-requests must be above 500 (RSS is compared between request 500 and the last)");
            return 2;
        }
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        BenchmarkSuite.Result result = await BenchmarkSuite.RunAsync(options, Console.Out, cancel.Token);
        // Non-zero when a target was missed, so a script can tell without reading the table.
        return TargetsOk(result) ? 0 : 1;
    }

    private const string WeightFormsUsage = "Usage: llmserver bench weight-forms --model DIR [--forms float32,bfloat16,int8] [--result-json FILE] [--port N] " +
        "[--input-len N (128)] [--output-len N (128)] [--single-stream-prompts N (8)] [--throughput-prompts N (64)] [--concurrency N (32)]";

    /// <summary>bench weight-forms: <see cref="WeightFormatComparison"/> on its own, without the rest of the suite.</summary>
    private static async Task<int> RunWeightFormsAsync(string[] args)
    {
        if (args.Any(a => a is "--help" or "-h"))
        {
            Console.WriteLine(WeightFormsUsage);
            return 0;
        }
        var values = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i]] = args[i + 1];
        }
        string[] known = ["--model", "--forms", "--result-json", "--port", "--input-len", "--output-len", "--single-stream-prompts", "--throughput-prompts", "--concurrency"];
        WeightFormatComparison.Options options;
        try
        {
            if (args.Length % 2 != 0)
            {
                throw new ArgumentException("every flag takes a value");
            }
            if (values.Keys.FirstOrDefault(flag => !known.Contains(flag)) is { } unknown)
            {
                throw new ArgumentException($"unknown flag '{unknown}'");
            }
            if (!values.TryGetValue("--model", out string? model))
            {
                throw new ArgumentException("--model DIR is required");
            }
            int Count(string flag, int fallback) =>
                !values.TryGetValue(flag, out string? text) ? fallback
                : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int value) && value > 0 ? value
                : throw new ArgumentException($"{flag} must be a positive whole number, not '{text}'");
            options = new WeightFormatComparison.Options(model, WeightFormatComparison.ParseForms(values.GetValueOrDefault("--forms", "float32,bfloat16,int8")))
            {
                Port = Count("--port", 8767),
                InputLength = Count("--input-len", 128),
                OutputLength = Count("--output-len", 128),
                SingleStreamPrompts = Count("--single-stream-prompts", 8),
                ThroughputPrompts = Count("--throughput-prompts", 64),
                ThroughputConcurrency = Count("--concurrency", 32),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(WeightFormsUsage);
            return 2;
        }
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        WeightFormatComparison.Result result = await WeightFormatComparison.RunAsync(options, Console.Out, cancel.Token);
        string resultPath = values.GetValueOrDefault("--result-json", "bench-weight-forms.json");
        await File.WriteAllTextAsync(resultPath, System.Text.Json.JsonSerializer.Serialize(result, ServingBenchmarkResult.JsonOptions), cancel.Token);
        Console.WriteLine($"Wrote {resultPath}");
        return result.Forms.All(f => f.Failed == 0) ? 0 : 1;
    }

    private static async Task<int> RunSoakAsync(string[] args)
    {
        var values = new Dictionary<string, string>();
        for (int i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i]] = args[i + 1];
        }
        string[] known = ["--model", "--base-url", "--duration", "--concurrency", "--api-key", "--result-json", "--port"];
        if (args.Length % 2 != 0 || values.Keys.Any(k => !known.Contains(k)) || values.ContainsKey("--model") == values.ContainsKey("--base-url")
            || !int.TryParse(values.GetValueOrDefault("--duration", "180"), out int seconds) || seconds < 1
            || !int.TryParse(values.GetValueOrDefault("--concurrency", "8"), out int concurrency) || concurrency < 1)
        {
            Console.Error.WriteLine("Usage: llmserver bench soak (--model DIR [--port N] | --base-url URL [--api-key KEY]) [--duration SECONDS (180)] " +
                "[--concurrency C (8)] [--result-json FILE]");
            return 2;
        }
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        ChildServer? child = null;
        try
        {
            Uri baseUrl;
            if (values.TryGetValue("--model", out string? model))
            {
                int port = int.Parse(values.GetValueOrDefault("--port", "8766"));
                child = await ChildServer.StartAsync(model, port, TextWriter.Null, cancel.Token);
                baseUrl = new Uri($"http://127.0.0.1:{port}");
            }
            else
            {
                baseUrl = new Uri(values["--base-url"]);
            }
            SoakTest.Result result = await SoakTest.RunAsync(new SoakTest.Options(baseUrl, TimeSpan.FromSeconds(seconds))
            {
                Concurrency = concurrency,
                ApiKey = values.GetValueOrDefault("--api-key"),
            }, Console.Out, cancel.Token);
            if (values.TryGetValue("--result-json", out string? resultPath))
            {
                await File.WriteAllTextAsync(resultPath, System.Text.Json.JsonSerializer.Serialize(result, new System.Text.Json.JsonSerializerOptions
                {
                    WriteIndented = true,
                    PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
                }));
            }
            return result.Passed ? 0 : 1;
        }
        finally
        {
            if (child is not null)
            {
                await child.DisposeAsync();
            }
        }
    }

    /// <summary>
    /// bench large-bodies --model DIR [--baseline OTHER/llmserver.dll] [--port N] [--timeout S] [--result-json FILE] [-- FLAGS]:
    /// the baseline build (if any), then this build as it is, then this build with FLAGS (if any), one after the other.
    /// </summary>
    private static async Task<int> RunLargeBodiesAsync(string[] args)
    {
        int separator = Array.IndexOf(args, "--");
        string[] serverFlags = separator >= 0 ? args[(separator + 1)..] : [];
        string[] own = separator >= 0 ? args[..separator] : args;
        var values = new Dictionary<string, string>();
        for (int i = 0; i + 1 < own.Length; i += 2)
        {
            values[own[i]] = own[i + 1];
        }
        string[] known = ["--model", "--baseline", "--port", "--timeout", "--result-json"];
        if (own.Length % 2 != 0 || values.Keys.Any(k => !known.Contains(k)) || !values.TryGetValue("--model", out string? model)
            || !int.TryParse(values.GetValueOrDefault("--port", "8767"), out int port)
            || !int.TryParse(values.GetValueOrDefault("--timeout", "120"), out int timeout) || timeout < 1)
        {
            Console.Error.WriteLine("Usage: llmserver bench large-bodies --model DIR [--baseline OTHER/llmserver.dll] [--port N (8767)] " +
                "[--timeout SECONDS (120)] [--result-json FILE] [-- SERVER FLAGS for a third run of this build]");
            return 2;
        }
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancel.Cancel(); };
        var runs = new List<LargeBodyBenchmark.Options>();
        var common = new LargeBodyBenchmark.Options(model) { Port = port, RequestTimeout = TimeSpan.FromSeconds(timeout) };
        if (values.TryGetValue("--baseline", out string? baseline))
        {
            runs.Add(common with { ServerAssembly = baseline });
        }
        runs.Add(common);
        if (serverFlags.Length > 0)
        {
            runs.Add(common with { ServerFlags = serverFlags });
        }
        var results = new List<LargeBodyBenchmark.Result>();
        foreach (LargeBodyBenchmark.Options run in runs)
        {
            results.Add(await LargeBodyBenchmark.RunAsync(run, Console.Out, cancel.Token));
        }
        LargeBodyBenchmark.Print(results, Console.Out);
        if (values.TryGetValue("--result-json", out string? resultPath))
        {
            await File.WriteAllTextAsync(resultPath, System.Text.Json.JsonSerializer.Serialize(results, new System.Text.Json.JsonSerializerOptions
            {
                WriteIndented = true,
                PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
            }));
        }
        return 0;
    }

    private static bool TargetsOk(BenchmarkSuite.Result result) =>
        result.Targets is { ComputeEfficiencyMet: true, SingleStreamMet: true, OverheadMet: true, MemoryMet: true, PrefixCacheMet: true };
}
