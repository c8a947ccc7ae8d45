using System.Globalization;
using System.Text;
using LlmServer.Bench.Progress;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// <c>llmserver bench [flags]</c>: one load test against a running server, printed as vLLM prints its
/// serving benchmark, optionally saved as JSON.
/// </summary>
/// <remarks>
/// Extension point: sub-verbs (<c>bench limits</c>, <c>bench suite</c>, <c>bench random-model</c>) are
/// dispatched by the caller before <see cref="RunAsync"/> is reached, so this class only ever sees the
/// flags of a single load test. Sub-verbs that run load tests themselves reuse <see cref="ParseOptions"/>
/// for those flags and <see cref="FlagsHelp"/> for their help text.
/// </remarks>
public static class BenchCommand
{
    public const string DefaultBaseUrl = "http://127.0.0.1:8000";

    private sealed record Flag(string Name, string Value, string Help, string Default);

    private static readonly ServingBenchmarkOptions Defaults = new() { BaseUrl = new Uri(DefaultBaseUrl) };

    private static readonly Flag[] Flags =
    [
        new("--base-url", "URL", "server to load", DefaultBaseUrl),
        new("--model", "NAME", "model to request", "the first one GET /v1/models lists"),
        new("--endpoint", "PATH", $"{ServingBenchmarkOptions.CompletionsEndpoint} or {ServingBenchmarkOptions.ChatCompletionsEndpoint}", Defaults.Endpoint),
        new("--num-prompts", "N", "requests to send", Defaults.NumPrompts.ToString(CultureInfo.InvariantCulture)),
        new("--num-warmups", "N", "requests sent and discarded before the clock starts", Defaults.NumWarmups.ToString(CultureInfo.InvariantCulture)),
        new("--input-len", "N", "prompt tokens per request (approximate for chat and --shared-prefix)", Defaults.InputLength.ToString(CultureInfo.InvariantCulture)),
        new("--output-len", "N", "tokens generated per request (sent with ignore_eos)", Defaults.OutputLength.ToString(CultureInfo.InvariantCulture)),
        new("--max-concurrency", "C", "most requests in flight at once", "no limit"),
        new("--request-rate", "R", "requests per second, Poisson arrivals; inf sends all at once", "inf"),
        new("--seed", "N", "seed for prompts and arrival times", Defaults.Seed.ToString(CultureInfo.InvariantCulture)),
        new("--temperature", "T", "sampling temperature", Defaults.Temperature.ToString(CultureInfo.InvariantCulture)),
        new("--shared-prefix", "TEXT", "text every prompt starts with (prefix caching)", "none"),
        new("--result-json", "FILE", "also write the result as JSON to FILE", "none"),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Any(a => a is "--help" or "-h"))
        {
            Console.Out.Write(Help());
            return 0;
        }
        ServingBenchmarkOptions options;
        string? resultJsonPath;
        try
        {
            options = ParseOptions(args, out resultJsonPath);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message} (see bench --help)");
            return 2;
        }

        using var cancellation = new CancellationTokenSource();
        ConsoleCancelEventHandler cancelOnCtrlC = (_, e) =>
        {
            // Stop the run, not the process: the finally blocks still restore the terminal line.
            e.Cancel = true;
            cancellation.Cancel();
        };
        Console.CancelKeyPress += cancelOnCtrlC;
        var progressBar = new ConsoleProgressBar();
        try
        {
            Console.Error.WriteLine(Describe(options));
            ServingBenchmarkResult result = await ServingBenchmark.RunAsync(options, progressBar, cancellation.Token);
            progressBar.Complete();
            Console.Out.Write(result.ToTable());
            WriteErrors(result);
            if (resultJsonPath is not null)
            {
                string? directory = Path.GetDirectoryName(Path.GetFullPath(resultJsonPath));
                if (directory is not null)
                {
                    Directory.CreateDirectory(directory);
                }
                await File.WriteAllTextAsync(resultJsonPath, result.ToJson());
                Console.Error.WriteLine($"wrote {resultJsonPath}");
            }
            return 0;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            progressBar.Complete();
            Console.Error.WriteLine("cancelled");
            return 130;
        }
        catch (Exception e) when (e is HttpRequestException or InvalidOperationException or IOException or UnauthorizedAccessException or System.Text.Json.JsonException)
        {
            progressBar.Complete();
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
        finally
        {
            Console.CancelKeyPress -= cancelOnCtrlC;
        }
    }

    /// <summary>
    /// Reads the load-test flags (<c>--flag value</c> or <c>--flag=value</c>) into options, and
    /// <c>--result-json</c> into <paramref name="resultJsonPath"/>. Throws <see cref="ArgumentException"/>
    /// naming the offending flag. <c>--help</c> is not a flag here: handle it before calling.
    /// </summary>
    public static ServingBenchmarkOptions ParseOptions(IReadOnlyList<string> args, out string? resultJsonPath)
    {
        ServingBenchmarkOptions options = Defaults;
        resultJsonPath = null;
        for (int i = 0; i < args.Count; i++)
        {
            string name = args[i], value;
            int equals = name.IndexOf('=');
            if (name.StartsWith("--", StringComparison.Ordinal) && equals > 0)
            {
                value = name[(equals + 1)..];
                name = name[..equals];
            }
            else if (Flags.All(f => f.Name != name))
            {
                throw new ArgumentException(name.StartsWith('-') ? $"unknown flag '{name}'" : $"unexpected argument '{name}'");
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = args[++i];
            }
            else
            {
                throw new ArgumentException($"{name} needs a value");
            }

            if (name == "--result-json")
            {
                resultJsonPath = NonEmpty(name, value);
                continue;
            }
            options = name switch
            {
                "--base-url" => options with { BaseUrl = ParseUrl(name, value) },
                "--model" => options with { Model = NonEmpty(name, value) },
                "--endpoint" => options with { Endpoint = ParseEndpoint(name, value) },
                "--num-prompts" => options with { NumPrompts = ParseCount(name, value) },
                "--num-warmups" => options with { NumWarmups = ParseInteger(name, value) },
                "--input-len" => options with { InputLength = ParseCount(name, value) },
                "--output-len" => options with { OutputLength = ParseCount(name, value) },
                "--max-concurrency" => options with { MaxConcurrency = ParseCount(name, value) },
                "--request-rate" => options with { RequestRate = ParseRate(name, value) },
                "--seed" => options with { Seed = ParseInteger(name, value) },
                "--temperature" => options with { Temperature = ParseTemperature(name, value) },
                "--shared-prefix" => options with { SharedPrefix = NonEmpty(name, value) },
                _ => throw new ArgumentException($"unknown flag '{name}'"),
            };
        }
        options.Validate();
        return options;
    }

    /// <summary>One line per load-test flag, for <c>bench --help</c> and sub-verbs that take the same flags.</summary>
    public static string FlagsHelp()
    {
        var text = new StringBuilder();
        int width = Flags.Max(f => f.Name.Length + f.Value.Length + 1) + 2;
        foreach (Flag flag in Flags)
        {
            text.AppendLine($"  {$"{flag.Name} {flag.Value}".PadRight(width)}{flag.Help} [default: {flag.Default}]");
        }
        return text.ToString();
    }

    public static string Help()
    {
        var text = new StringBuilder();
        text.AppendLine("Usage: llmserver bench [flags]");
        text.AppendLine();
        text.AppendLine("Load-tests a running OpenAI-compatible server the way vLLM's serving benchmark does: random prompts,");
        text.AppendLine("streamed completions of a fixed length, then throughput and TTFT / TPOT / ITL / end-to-end latency.");
        text.AppendLine("Completions prompts are random token ids, so their length is exact; chat prompts and prompts with");
        text.AppendLine("--shared-prefix are random words, and the token counts reported are the server's own (usage).");
        text.AppendLine();
        text.Append(FlagsHelp());
        return text.ToString();
    }

    private static string Describe(ServingBenchmarkOptions options)
    {
        string rate = options.SendsAllAtOnce ? "all at once" : $"{options.RequestRate!.Value.ToString(CultureInfo.InvariantCulture)} req/s";
        string concurrency = options.MaxConcurrency is { } limit ? $", at most {limit} in flight" : "";
        return $"{options.NumPrompts} requests of {options.InputLength} -> {options.OutputLength} tokens to {options.Resolve(options.Endpoint)}, {rate}{concurrency}";
    }

    private static void WriteErrors(ServingBenchmarkResult result)
    {
        if (result.Errors.Count == 0)
        {
            return;
        }
        Console.Out.WriteLine($"Errors ({result.Failed} failed requests, {result.RateLimited} of them HTTP 429):");
        foreach (ErrorCount error in result.Errors)
        {
            Console.Out.WriteLine($"  {error.Count} x {error.Message}");
        }
    }

    private static Uri ParseUrl(string flag, string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out Uri? url) && (url.Scheme == Uri.UriSchemeHttp || url.Scheme == Uri.UriSchemeHttps)
            ? url
            : throw new ArgumentException($"{flag}: '{value}' is not an http:// or https:// URL");

    private static string ParseEndpoint(string flag, string value) =>
        value is ServingBenchmarkOptions.CompletionsEndpoint or ServingBenchmarkOptions.ChatCompletionsEndpoint
            ? value
            : throw new ArgumentException($"{flag}: '{value}' is neither {ServingBenchmarkOptions.CompletionsEndpoint} nor {ServingBenchmarkOptions.ChatCompletionsEndpoint}");

    private static int ParseInteger(string flag, string value) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int number)
            ? number
            : throw new ArgumentException($"{flag}: '{value}' is not a whole number");

    private static int ParseCount(string flag, string value)
    {
        int number = ParseInteger(flag, value);
        return number >= 1 ? number : throw new ArgumentException($"{flag} must be at least 1, not {number}");
    }

    private static double? ParseRate(string flag, string value)
    {
        if (value.Equals("inf", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double rate) && rate > 0 && double.IsFinite(rate)
            ? rate
            : throw new ArgumentException($"{flag}: '{value}' is neither a positive number of requests per second nor inf");
    }

    private static double ParseTemperature(string flag, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double temperature) && temperature >= 0 && double.IsFinite(temperature)
            ? temperature
            : throw new ArgumentException($"{flag}: '{value}' is not a temperature (a number, 0 or more)");

    private static string NonEmpty(string flag, string value) =>
        value.Length > 0 ? value : throw new ArgumentException($"{flag} needs a non-empty value");
}
