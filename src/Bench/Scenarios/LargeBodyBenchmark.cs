using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace LlmServer.Bench.Scenarios;

/// <summary>
/// <c>llmserver bench large-bodies</c>: what big and adversarial request bodies cost a server started
/// as a child process (issue 13): the time to answer a 480,000-letter word, 1 MB one-word and CJK
/// prompts and a 20 MB body; the resident set before and after 17 bodies of 20 MB and after a
/// 20 MB one-word prompt; and the CPU the server still burns once a client has given up on a
/// request. A baseline (another build's llmserver.dll) can run first, so two builds compare in one run.
/// </summary>
public static class LargeBodyBenchmark
{
    public sealed record Options(string ModelDirectory)
    {
        /// <summary>Another build's llmserver.dll; null runs this executable.</summary>
        public string? ServerAssembly { get; init; }
        public int Port { get; init; } = 8767;
        /// <summary>Flags for the server beyond --model and --port (--max-request-body 32MiB, say).</summary>
        public IReadOnlyList<string> ServerFlags { get; init; } = [];
        /// <summary>How long a request may take before the client gives up on it.</summary>
        public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(120);
        public int SeriesLength { get; init; } = 17;
    }

    /// <param name="Status">The HTTP status, or 0 when no answer came within the timeout.</param>
    /// <param name="Code">The error code of a refusal.</param>
    public sealed record Timing(string Case, int Status, string? Code, double Seconds);

    /// <param name="CpuSecondsAfterLeaving">CPU the server used in the seconds after the client gave up (2 cores: up to 2 per second).</param>
    public sealed record Abandoned(string Case, double AbandonedAfterSeconds, double CpuSecondsAfterLeaving, double OverSeconds);

    public sealed record Result(
        string Server, IReadOnlyList<string> ServerFlags, IReadOnlyList<Timing> Timings,
        long RssIdle, long RssAfterOneMegabyteCases, long RssAfterSeries, int SeriesLength, long RssAfterOneWord,
        IReadOnlyList<Abandoned> Abandoned);

    private const int TwentyMegabytes = 20_000_000;

    private static readonly TimeSpan SettleTime = TimeSpan.FromSeconds(12);

    public static async Task<Result> RunAsync(Options options, TextWriter log, CancellationToken cancellationToken)
    {
        await using ChildServer server = await ChildServer.StartAsync(options.ServerAssembly, options.ModelDirectory, options.Port, TextWriter.Null,
            cancellationToken, [.. options.ServerFlags]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{options.Port}"), Timeout = Timeout.InfiniteTimeSpan };
        string serverName = options.ServerAssembly is null ? "this build" : $"baseline {options.ServerAssembly}";
        log.WriteLine($"Large bodies against {serverName} {string.Join(' ', options.ServerFlags)} (model {options.ModelDirectory}); " +
            $"a request gets {options.RequestTimeout.TotalSeconds:F0} s");

        var timings = new List<Timing>();
        async Task<Timing> TimeAsync(string name, string path, byte[] body)
        {
            Timing timing = await SendAsync(http, name, path, body, options.RequestTimeout, cancellationToken);
            timings.Add(timing);
            log.WriteLine($"  {name,-34} {Describe(timing)}");
            return timing;
        }

        await TimeAsync("warm-up (a 5-token prompt)", "/v1/completions", Json(new { prompt = "Hello there, server", max_tokens = 2 }));
        await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
        long rssIdle = server.ResidentBytes;
        log.WriteLine($"  RSS idle after one request: {Mib(rssIdle)}");

        var random = new Random(13);
        await TimeAsync("84,000 CJK characters (completions)", "/v1/completions", Json(new { prompt = Cjk(random, 84_000) }));
        await TimeAsync("480,000-letter word (completions)", "/v1/completions", Json(new { prompt = Letters(random, 480_000) }));
        await TimeAsync("1 MB one-word prompt (completions)", "/v1/completions", Json(new { prompt = Letters(random, 1_000_000) }));
        await TimeAsync("1 MB CJK prompt (chat)", "/v1/chat/completions", Json(new { messages = new[] { new { role = "user", content = Cjk(random, 1_000_000 / 3) } } }));
        long rssAfterMegabyteCases = server.ResidentBytes;

        // The issue's series: 17 chat bodies of 20 MB of ordinary words, each a quick refusal.
        byte[] wordsBody = Json(new { messages = new[] { new { role = "user", content = Words(TwentyMegabytes - 64) } } });
        for (int i = 0; i < options.SeriesLength; i++)
        {
            Timing timing = await SendAsync(http, "20 MB chat body of words", "/v1/chat/completions", wordsBody, options.RequestTimeout, cancellationToken);
            if (i == 0)
            {
                timings.Add(timing);
                log.WriteLine($"  {timing.Case,-34} {Describe(timing)}");
            }
        }
        // The server gives memory back a second after the last large body, at most every 10 s.
        await Task.Delay(SettleTime, cancellationToken);
        long rssAfterSeries = server.ResidentBytes;
        log.WriteLine($"  RSS {SettleTime.TotalSeconds:F0} s after {options.SeriesLength} bodies of 20 MB: {Mib(rssAfterSeries)}");

        await TimeAsync("20 MB one-word prompt (completions)", "/v1/completions", Json(new { prompt = new string('a', TwentyMegabytes - 16) }));
        await Task.Delay(SettleTime, cancellationToken);
        long rssAfterOneWord = server.ResidentBytes;
        log.WriteLine($"  RSS {SettleTime.TotalSeconds:F0} s after the one-word prompt: {Mib(rssAfterOneWord)}");

        // /tokenize has no context limit (as vLLM's): these are the tokenizer's own cost, not a refusal's.
        await TimeAsync("/tokenize a 1 MB one-word prompt", "/tokenize", Json(new { prompt = Letters(random, 1_000_000) }));
        await TimeAsync("/tokenize a 1 MB CJK prompt", "/tokenize", Json(new { prompt = Cjk(random, 1_000_000 / 3) }));

        // A client that gives up: /tokenize has no context limit, so a long word is really encoded.
        var abandoned = new List<Abandoned>
        {
            await AbandonAsync(http, server, "/tokenize of a 4 MB word, left after 0.5 s", "/tokenize",
                Json(new { prompt = Letters(random, 4_000_000) }), TimeSpan.FromSeconds(0.5), cancellationToken),
        };
        foreach (Abandoned a in abandoned)
        {
            log.WriteLine($"  {a.Case}: server CPU {a.CpuSecondsAfterLeaving:F2} s over the next {a.OverSeconds:F0} s");
        }
        return new Result(serverName, options.ServerFlags, timings, rssIdle, rssAfterMegabyteCases, rssAfterSeries, options.SeriesLength, rssAfterOneWord, abandoned);
    }

    private static async Task<Timing> SendAsync(HttpClient http, string name, string path, byte[] body, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        var clock = Stopwatch.StartNew();
        try
        {
            using var content = new ByteArrayContent(body);
            content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
            using HttpResponseMessage response = await http.PostAsync(path, content, deadline.Token);
            string text = await response.Content.ReadAsStringAsync(deadline.Token);
            string? code = null;
            if (!response.IsSuccessStatusCode && text.StartsWith('{'))
            {
                code = JsonDocument.Parse(text).RootElement.GetProperty("error").GetProperty("code").GetString();
            }
            return new Timing(name, (int)response.StatusCode, code, clock.Elapsed.TotalSeconds);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return new Timing(name, 0, null, clock.Elapsed.TotalSeconds);
        }
        catch (HttpRequestException e)
        {
            return new Timing(name, 0, e.Message, clock.Elapsed.TotalSeconds);
        }
    }

    private static async Task<Abandoned> AbandonAsync(HttpClient http, ChildServer server, string name, string path, byte[] body, TimeSpan after,
        CancellationToken cancellationToken)
    {
        await SendAsync(http, name, path, body, after, cancellationToken);
        // What the server does once nobody waits for the answer.
        TimeSpan cpuBefore = server.CpuTime;
        var over = TimeSpan.FromSeconds(3);
        await Task.Delay(over, cancellationToken);
        return new Abandoned(name, after.TotalSeconds, (server.CpuTime - cpuBefore).TotalSeconds, over.TotalSeconds);
    }

    public static void Print(IReadOnlyList<Result> results, TextWriter log)
    {
        log.WriteLine();
        log.WriteLine("| | " + string.Join(" | ", results.Select(r => r.Server.StartsWith("baseline", StringComparison.Ordinal) ? "baseline" : $"{r.Server} {string.Join(' ', r.ServerFlags)}".Trim())) + " |");
        log.WriteLine("|---|" + string.Concat(results.Select(_ => "---|")));
        foreach (string name in results[0].Timings.Select(t => t.Case))
        {
            log.WriteLine($"| {name} | " + string.Join(" | ", results.Select(r => r.Timings.FirstOrDefault(t => t.Case == name) is { } t ? Describe(t) : "")) + " |");
        }
        log.WriteLine("| RSS idle -> after 1 MB cases | " + string.Join(" | ", results.Select(r => $"{Mib(r.RssIdle)} -> {Mib(r.RssAfterOneMegabyteCases)}")) + " |");
        log.WriteLine($"| RSS {SettleTime.TotalSeconds:F0} s after {results[0].SeriesLength} bodies of 20 MB | " + string.Join(" | ", results.Select(r => Mib(r.RssAfterSeries))) + " |");
        log.WriteLine($"| RSS {SettleTime.TotalSeconds:F0} s after the 20 MB one-word prompt | " + string.Join(" | ", results.Select(r => Mib(r.RssAfterOneWord))) + " |");
        foreach (string name in results[0].Abandoned.Select(a => a.Case))
        {
            log.WriteLine($"| {name}: server CPU in the next 3 s | " + string.Join(" | ", results.Select(r => r.Abandoned.FirstOrDefault(a => a.Case == name) is { } a ? $"{a.CpuSecondsAfterLeaving:F2} s" : "")) + " |");
        }
    }

    private static string Describe(Timing timing) => timing.Status == 0
        ? $"no answer in {timing.Seconds:F0} s{(timing.Code is null ? "" : $" ({timing.Code})")}"
        : $"{timing.Status}{(timing.Code is null ? "" : $" {timing.Code}")} in {timing.Seconds:F2} s";

    private static string Mib(long bytes) => $"{bytes / 1048576.0:F0} MiB";

    private static byte[] Json(object value) => JsonSerializer.SerializeToUtf8Bytes(value, new JsonSerializerOptions
    {
        // UTF-8 as it is, not \u escapes: a 1 MB CJK prompt is 1 MB on the wire.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    private static string Letters(Random random, int length) => string.Create(length, random, (chars, r) =>
    {
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)('a' + r.Next(26));
        }
    });

    private static string Cjk(Random random, int length) => string.Create(length, random, (chars, r) =>
    {
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = (char)(0x4E00 + r.Next(20_000));
        }
    });

    private static string Words(int length)
    {
        var text = new StringBuilder(length + 16);
        string[] words = ["lorem", "ipsum", "dolor", "sit", "amet", "server", "request", "token"];
        for (int i = 0; text.Length < length; i++)
        {
            text.Append(words[i % words.Length]).Append(' ');
        }
        return text.ToString(0, length);
    }
}
