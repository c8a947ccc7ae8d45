using LlmServer.Benchmarks;
using LlmServer.Inference.Benchmarking;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver bench ...</c>: a load test against a running server (the default), or one of
/// <c>suite</c> (every serving target in one run, server included), <c>limits</c> (the model's
/// in-process limits) and <c>random-model</c> (a random-weight checkpoint to benchmark with).
/// </summary>
public static class BenchCommands
{
    public static async Task<int> RunAsync(string[] args)
    {
        string verb = args.Length > 0 ? args[0] : "";
        string[] rest = args.Length > 0 ? args[1..] : [];
        switch (verb)
        {
            case "random-model":
                return RandomModelCommand.Run(rest);
            case "limits":
                if (rest.Length != 2 || rest[0] != "--model")
                {
                    Console.Error.WriteLine("Usage: llmserver bench limits --model DIR");
                    return 2;
                }
                Console.WriteLine(ModelLimits.Measure(rest[1]));
                return 0;
            case "suite":
                return await RunSuiteAsync(rest);
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
            Console.Error.WriteLine("Usage: llmserver bench suite --model DIR [--result-json FILE] [--port N] [--memory-requests N]");
            return 2;
        }
        var options = new BenchmarkSuite.Options(model, values.GetValueOrDefault("--result-json", "bench-suite.json"))
        {
            Port = int.Parse(values.GetValueOrDefault("--port", "8765")),
            MemoryRequests = int.Parse(values.GetValueOrDefault("--memory-requests", "2000")),
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

    private static bool TargetsOk(BenchmarkSuite.Result result) =>
        result.Targets is { ComputeEfficiencyMet: true, SingleStreamMet: true, OverheadMet: true, MemoryMet: true, PrefixCacheMet: true };
}
