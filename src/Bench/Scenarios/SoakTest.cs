using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LlmServer.Bench.LoadTest;
using LlmServer.Bench.Prometheus;

namespace LlmServer.Bench.Scenarios;

/// <summary>
/// <c>llmserver bench soak</c>: a mixed load for a fixed time at fixed concurrency, the way a busy
/// server sees it: chat and completions, streamed and not, tokenize round trips, requests that
/// must be refused (4xx), and clients that disconnect mid-stream. It counts every answer by kind,
/// fails on any 5xx or unexpected status, and compares the server's memory and live tensors
/// before and after.
/// </summary>
public static class SoakTest
{
    public sealed record Options(Uri BaseUrl, TimeSpan Duration)
    {
        public int Concurrency { get; init; } = 8;
        public string? ApiKey { get; init; }
        public int Seed { get; init; } = 1;
        public int MaxTokens { get; init; } = 16;
    }

    public sealed record KindResult(string Kind, int Requests, int ServerErrors, int Unexpected, double P50Ms, double P99Ms);

    public sealed record Result(
        double Seconds, int Requests, int ServerErrors, int Unexpected, double P99Ms, IReadOnlyList<KindResult> Kinds,
        long RssBefore, long RssAtThird, long RssAfter, double RssGrowthPercent, double RssGrowthAfterThirdPercent,
        long TensorsBefore, long TensorsAfter, IReadOnlyList<string> FirstProblems)
    {
        // Fewer is fine: the process may free tensors it held before (garbage from earlier work); more is a leak.
        public bool Passed => ServerErrors == 0 && Unexpected == 0 && TensorsAfter <= TensorsBefore;
    }

    private enum Kind { Chat, ChatStream, Completion, CompletionStream, Tokenize, BadRequest, UnknownModel, Disconnect }

    private sealed record Outcome(Kind Kind, int Status, double Ms, string? Problem);

    public static async Task<Result> RunAsync(Options options, TextWriter log, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = options.BaseUrl, Timeout = TimeSpan.FromMinutes(2) };
        if (options.ApiKey is not null)
        {
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
        }
        string model = (await http.GetFromJsonAsync<JsonElement>("/v1/models", cancellationToken)).GetProperty("data")[0].GetProperty("id").GetString()!;

        // Warm up every path once, then take the baseline the end is compared with.
        foreach (Kind kind in Enum.GetValues<Kind>())
        {
            await SendAsync(http, kind, model, options, new Random(0), cancellationToken);
        }
        long tensorsBefore = (long)await PrometheusScrape.ReadAsync(http, "llmserver_torch_live_tensors", cancellationToken);
        long rssBefore = (long)await PrometheusScrape.ReadAsync(http, "llmserver_process_resident_memory_bytes", cancellationToken);
        log.WriteLine($"Soak: {options.Duration.TotalSeconds:F0} s at concurrency {options.Concurrency} against {options.BaseUrl} ({model}); " +
            $"before: {tensorsBefore} live tensors, RSS {rssBefore / 1048576.0:F0} MiB");

        var outcomes = new ConcurrentBag<Outcome>();
        var clock = Stopwatch.StartNew();
        Kind[] kinds = Enum.GetValues<Kind>();
        // The first third warms what grows once and then stays (KV-cache pages first touched, the
        // allocator's arenas); growth after it is what a leak would look like.
        Task<double> rssAtThird = Task.Delay(options.Duration / 3, cancellationToken)
            .ContinueWith(_ => PrometheusScrape.ReadAsync(http, "llmserver_process_resident_memory_bytes", cancellationToken), TaskScheduler.Default).Unwrap();
        await Task.WhenAll(Enumerable.Range(0, options.Concurrency).Select(async client =>
        {
            var random = new Random(options.Seed * 1000 + client);
            while (clock.Elapsed < options.Duration && !cancellationToken.IsCancellationRequested)
            {
                outcomes.Add(await SendAsync(http, kinds[random.Next(kinds.Length)], model, options, random, cancellationToken));
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;

        // Disconnected requests are aborted within a step; give the engine a moment to free them.
        long tensorsAfter = tensorsBefore;
        for (int attempt = 0; attempt < 20; attempt++)
        {
            tensorsAfter = (long)await PrometheusScrape.ReadAsync(http, "llmserver_torch_live_tensors", cancellationToken);
            if (tensorsAfter == tensorsBefore)
            {
                break;
            }
            await Task.Delay(100, cancellationToken);
        }
        long rssAfter = (long)await PrometheusScrape.ReadAsync(http, "llmserver_process_resident_memory_bytes", cancellationToken);
        long rssThird = (long)await rssAtThird;

        List<Outcome> all = outcomes.ToList();
        var byKind = all.GroupBy(o => o.Kind).OrderBy(g => g.Key).Select(g => new KindResult(
            g.Key.ToString(), g.Count(), g.Count(o => o.Status >= 500), g.Count(o => o.Problem is not null),
            LatencyStatistics.Percentile(g.Select(o => o.Ms), 50), LatencyStatistics.Percentile(g.Select(o => o.Ms), 99))).ToList();
        var result = new Result(seconds, all.Count, all.Count(o => o.Status >= 500), all.Count(o => o.Problem is not null),
            LatencyStatistics.Percentile(all.Select(o => o.Ms), 99), byKind, rssBefore, rssThird, rssAfter, 100.0 * (rssAfter - rssBefore) / rssBefore,
            100.0 * (rssAfter - rssThird) / rssThird, tensorsBefore, tensorsAfter, all.Where(o => o.Problem is not null).Select(o => o.Problem!).Take(5).ToList());
        Print(result, log);
        return result;
    }

    private static async Task<Outcome> SendAsync(HttpClient http, Kind kind, string model, Options options, Random random, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        string words = string.Join(' ', Enumerable.Range(0, random.Next(3, 40)).Select(_ => Vocabulary[random.Next(Vocabulary.Length)]));
        object message = new[] { new { role = "user", content = words } };
        (string path, object body, int expected, bool stream) = kind switch
        {
            Kind.Chat => ("/v1/chat/completions", (object)new { model, messages = message, max_tokens = options.MaxTokens }, 200, false),
            Kind.ChatStream => ("/v1/chat/completions", new { model, messages = message, max_tokens = options.MaxTokens, stream = true, stream_options = new { include_usage = true } }, 200, true),
            Kind.Completion => ("/v1/completions", new { model, prompt = words, max_tokens = options.MaxTokens, logprobs = 2 }, 200, false),
            Kind.CompletionStream => ("/v1/completions", new { model, prompt = words, max_tokens = options.MaxTokens, stream = true }, 200, true),
            Kind.Tokenize => ("/tokenize", new { model, prompt = words }, 200, false),
            Kind.BadRequest => ("/v1/chat/completions", new { model, messages = message, temperature = "hot" }, 400, false),
            Kind.UnknownModel => ("/v1/chat/completions", new { model = "no-such-model", messages = message }, 404, false),
            _ => ("/v1/completions", new { model, prompt = words, max_tokens = 64, ignore_eos = true, stream = true }, 200, true),
        };
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, path)
            {
                Content = new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"),
            };
            using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
            int status = (int)response.StatusCode;
            string? problem = status == expected ? null : $"{kind}: {status} {Truncate(await response.Content.ReadAsStringAsync(cancellationToken))}";
            if (problem is null && kind == Kind.Disconnect)
            {
                // Read the first chunk, then walk away: the server must abort the generation.
                await using Stream events = await response.Content.ReadAsStreamAsync(cancellationToken);
                // Any bytes at all mean the stream has started; how many does not matter.
                _ = await events.ReadAtLeastAsync(new byte[256], 1, throwOnEndOfStream: false, cancellationToken);
            }
            else if (problem is null)
            {
                string text = await response.Content.ReadAsStringAsync(cancellationToken);
                problem = stream && !text.Contains("data: [DONE]", StringComparison.Ordinal) ? $"{kind}: stream ended without [DONE]: {Truncate(text)}"
                    : kind == Kind.Tokenize ? await DetokenizeProblemAsync(http, model, words, text, cancellationToken)
                    : null;
            }
            return new Outcome(kind, status, Stopwatch.GetElapsedTime(started).TotalMilliseconds, problem);
        }
        catch (Exception e) when (e is HttpRequestException or IOException or TaskCanceledException && !cancellationToken.IsCancellationRequested)
        {
            return new Outcome(kind, 0, Stopwatch.GetElapsedTime(started).TotalMilliseconds, $"{kind}: {e.GetType().Name}: {e.Message}");
        }
    }

    /// <summary>Tokenize then detokenize must give the text back.</summary>
    private static async Task<string?> DetokenizeProblemAsync(HttpClient http, string model, string words, string tokenized, CancellationToken cancellationToken)
    {
        JsonElement tokens = JsonDocument.Parse(tokenized).RootElement.GetProperty("tokens");
        using HttpResponseMessage response = await http.PostAsync("/detokenize", new StringContent(
            JsonSerializer.Serialize(new { model, tokens }), Encoding.UTF8, "application/json"), cancellationToken);
        string text = await response.Content.ReadAsStringAsync(cancellationToken);
        return response.StatusCode == HttpStatusCode.OK && JsonDocument.Parse(text).RootElement.GetProperty("prompt").GetString() == words
            ? null : $"Tokenize: detokenize gave {(int)response.StatusCode} {Truncate(text)}";
    }

    private static string Truncate(string text) => text.Length <= 200 ? text : text[..200] + "...";

    private static void Print(Result result, TextWriter log)
    {
        log.WriteLine($"{result.Requests} requests in {result.Seconds:F0} s: {result.ServerErrors} 5xx, {result.Unexpected} unexpected; p99 {result.P99Ms:F0} ms");
        foreach (KindResult kind in result.Kinds)
        {
            log.WriteLine($"  {kind.Kind,-17} {kind.Requests,6}  5xx {kind.ServerErrors}  unexpected {kind.Unexpected}  p50 {kind.P50Ms,7:F1} ms  p99 {kind.P99Ms,7:F1} ms");
        }
        log.WriteLine($"Memory: RSS {result.RssBefore / 1048576.0:F0} -> {result.RssAtThird / 1048576.0:F0} (a third in) -> {result.RssAfter / 1048576.0:F0} MiB " +
            $"({result.RssGrowthPercent:+0.0;-0.0}% overall, {result.RssGrowthAfterThirdPercent:+0.0;-0.0}% after the first third), " +
            $"live tensors {result.TensorsBefore} -> {result.TensorsAfter}");
        foreach (string problem in result.FirstProblems)
        {
            log.WriteLine($"  problem: {problem}");
        }
    }

    private static readonly string[] Vocabulary =
        ["the", "server", "answers", "every", "request", "with", "a", "short", "reply", "about", "cats", "and", "dogs", "in",
         "plain", "words", "today", "tomorrow", "quickly", "slowly", "green", "blue", "tokens", "stream", "over", "time"];
}
