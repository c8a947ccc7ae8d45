using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Bench.LoadTest;

namespace LlmServer.Bench.StructuredOutput;

/// <summary>
/// What constrained rows cost a batch: the same wave of concurrent chat requests sent twice, once all free and once
/// with some rows carrying a json_schema response_format, alternated (A B A B ...) so that the shared machine's
/// drift falls on both alike. Constrained rows cannot use ignore_eos (the grammar ends them), so every row asks for
/// the same max_tokens and the schema is <see cref="BenchmarkSchemas.LongText"/>, whose reply stays in its one string
/// until the budget closes it; the mean completion length of either kind of row is reported beside the rates.
/// </summary>
public static class ConstrainedThroughput
{
    public sealed record Options(Uri BaseUrl)
    {
        public int Concurrency { get; init; } = 32;
        public int ConstrainedRows { get; init; } = 8;
        public int MaxTokens { get; init; } = 128;
        /// <summary>How many times each of the two waves runs, alternating.</summary>
        public int Rounds { get; init; } = 2;
        public string Prompt { get; init; } = "Summarise the minutes of the last committee meeting for the members who could not attend.";
        public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromMinutes(10);
    }

    /// <param name="MeanCompletionTokensConstrained">Over the constrained rows alone; null in an unconstrained wave.</param>
    /// <param name="InvalidReplies">Constrained replies that are not a JSON object with a string "text".</param>
    public sealed record Wave(
        string Kind, int Round, int Rows, int ConstrainedRows, int Failed, int OutputTokens, double Seconds, double OutputTokensPerSecond,
        double MeanCompletionTokens, double? MeanCompletionTokensConstrained, int InvalidReplies);

    /// <param name="MaxTokens">max_tokens every row asked for: the option, or less where the model's context is shorter.</param>
    /// <param name="MixedOverUnconstrained">Output tokens/s with constrained rows over that without, over all rounds.</param>
    public sealed record Result(
        int Concurrency, int ConstrainedRows, int MaxTokens, int PromptTokens, IReadOnlyList<Wave> Waves,
        double UnconstrainedOutputTokensPerSecond, double MixedOutputTokensPerSecond, double MixedOverUnconstrained);

    private sealed record Row(bool Constrained, int Status, int CompletionTokens, bool ValidReply);

    public static async Task<Result> RunAsync(Options options, TextWriter log, CancellationToken cancellationToken)
    {
        HttpClient http = BenchmarkHttpClient.Shared;
        JsonElement models = await http.GetFromJsonAsync<JsonElement>(Resolve(options, "/v1/models"), cancellationToken);
        JsonElement card = models.GetProperty("data")[0];
        string model = card.GetProperty("id").GetString()!;
        int maxModelLen = card.TryGetProperty("max_model_len", out JsonElement length) ? length.GetInt32() : int.MaxValue;

        // A constrained request first: the server builds the model's token trie for the first one, which is a
        // one-off cost no wave should carry. A free one then gives the prompt's length, to fit max_tokens in the context.
        Row warmUp = await SendAsync(http, options, model, constrained: true, maxTokens: 2, seed: 0, cancellationToken);
        int promptTokens = await PromptTokensAsync(http, options, model, cancellationToken);
        int maxTokens = Math.Min(options.MaxTokens, maxModelLen - promptTokens);
        if (warmUp.Status != 200 || maxTokens < 8)
        {
            throw new InvalidOperationException(warmUp.Status != 200
                ? $"the constrained warm-up request answered HTTP {warmUp.Status}"
                : $"the model's context ({maxModelLen}) leaves {maxTokens} tokens after the {promptTokens}-token prompt");
        }

        log.WriteLine($"Batch throughput: {options.Concurrency} concurrent chat requests of max_tokens {maxTokens}, " +
            $"all free against {options.ConstrainedRows} with a json_schema response_format, {options.Rounds} rounds alternated after one untimed...");
        // One whole wave untimed first: in a first run the opening wave of 32 was 15-40% slower than the later ones
        // (the batch's first steps at this size), which fell on the all-free wave alone.
        await RunWaveAsync(http, options, model, maxTokens, round: 0, mixed: true, cancellationToken);
        var waves = new List<Wave>();
        for (int round = 1; round <= options.Rounds; round++)
        {
            foreach (bool mixed in new[] { false, true })
            {
                Wave wave = await RunWaveAsync(http, options, model, maxTokens, round, mixed, cancellationToken);
                waves.Add(wave);
                log.WriteLine($"  round {round}, {wave.Kind,-13}: {wave.OutputTokens} tokens in {wave.Seconds:F2} s = {wave.OutputTokensPerSecond:F1} tok/s; " +
                    $"mean {wave.MeanCompletionTokens:F1} tokens per row" +
                    (wave.MeanCompletionTokensConstrained is { } c ? $" ({c:F1} on constrained rows, {wave.InvalidReplies} invalid)" : "") +
                    (wave.Failed > 0 ? $"; {wave.Failed} FAILED" : ""));
            }
        }

        double Rate(string kind) => waves.Where(w => w.Kind == kind).Sum(w => w.OutputTokens) / waves.Where(w => w.Kind == kind).Sum(w => w.Seconds);
        double free = Rate("unconstrained"), mixedRate = Rate("mixed");
        return new Result(options.Concurrency, options.ConstrainedRows, maxTokens, promptTokens, waves, free, mixedRate, mixedRate / free);
    }

    private static async Task<Wave> RunWaveAsync(HttpClient http, Options options, string model, int maxTokens, int round, bool mixed,
        CancellationToken cancellationToken)
    {
        // Constrained rows spread through the wave (every fourth of 32) rather than bunched at its start.
        int every = Math.Max(1, options.Concurrency / Math.Max(1, options.ConstrainedRows));
        bool IsConstrained(int row) => mixed && row % every == 0 && row / every < options.ConstrainedRows;
        long start = Stopwatch.GetTimestamp();
        Row[] rows = await Task.WhenAll(Enumerable.Range(0, options.Concurrency)
            .Select(row => SendAsync(http, options, model, IsConstrained(row), maxTokens, seed: round * 1000 + row, cancellationToken)));
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Row[] ok = rows.Where(r => r.Status == 200).ToArray();
        Row[] constrained = ok.Where(r => r.Constrained).ToArray();
        int outputTokens = ok.Sum(r => r.CompletionTokens);
        return new Wave(mixed ? "mixed" : "unconstrained", round, rows.Length, rows.Count(r => r.Constrained), rows.Length - ok.Length,
            outputTokens, seconds, outputTokens / seconds, ok.Length == 0 ? 0 : ok.Average(r => r.CompletionTokens),
            mixed ? (constrained.Length == 0 ? 0 : constrained.Average(r => r.CompletionTokens)) : null,
            constrained.Count(r => !r.ValidReply));
    }

    private static async Task<Row> SendAsync(HttpClient http, Options options, string model, bool constrained, int maxTokens, int seed,
        CancellationToken cancellationToken)
    {
        var body = new Dictionary<string, object>
        {
            ["model"] = model,
            ["messages"] = new[] { new { role = "user", content = options.Prompt } },
            ["max_tokens"] = maxTokens,
            // Sampled, not greedy: a random-weight model's greedy reply may close the string at once.
            ["temperature"] = 1.0,
            ["seed"] = seed,
        };
        if (constrained)
        {
            body["response_format"] = new
            {
                type = "json_schema",
                json_schema = new { name = "long_text", strict = true, schema = BenchmarkSchemas.LongText.SchemaElement },
            };
        }
        else
        {
            body["ignore_eos"] = true;
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(options.RequestTimeout);
        using HttpResponseMessage response = await http.PostAsJsonAsync(Resolve(options, "/v1/chat/completions"), body, deadline.Token);
        if (!response.IsSuccessStatusCode)
        {
            return new Row(constrained, (int)response.StatusCode, 0, false);
        }

        JsonElement reply = await response.Content.ReadFromJsonAsync<JsonElement>(deadline.Token);
        int completionTokens = reply.GetProperty("usage").GetProperty("completion_tokens").GetInt32();
        string content = reply.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString() ?? "";
        return new Row(constrained, (int)response.StatusCode, completionTokens, !constrained || IsLongTextReply(content));
    }

    private static async Task<int> PromptTokensAsync(HttpClient http, Options options, string model, CancellationToken cancellationToken)
    {
        var body = new { model, messages = new[] { new { role = "user", content = options.Prompt } }, max_tokens = 1 };
        using HttpResponseMessage response = await http.PostAsJsonAsync(Resolve(options, "/v1/chat/completions"), body, cancellationToken);
        response.EnsureSuccessStatusCode();
        JsonElement reply = await response.Content.ReadFromJsonAsync<JsonElement>(cancellationToken);
        return reply.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
    }

    /// <summary>Whether <paramref name="content"/> is a document of <see cref="BenchmarkSchemas.LongText"/>.</summary>
    internal static bool IsLongTextReply(string content)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(content);
            JsonElement root = document.RootElement;
            return root.ValueKind == JsonValueKind.Object && root.EnumerateObject().Count() == 1
                && root.TryGetProperty("text", out JsonElement text) && text.ValueKind == JsonValueKind.String;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static Uri Resolve(Options options, string path) => new(options.BaseUrl.ToString().TrimEnd('/') + "/" + path.TrimStart('/'));
}
