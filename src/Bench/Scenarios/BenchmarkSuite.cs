using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LlmServer.Bench.Limits;
using LlmServer.Bench.LoadTest;
using LlmServer.Bench.Progress;
using LlmServer.Bench.Prometheus;
using LlmServer.Inference.Models.Attention;

namespace LlmServer.Bench.Scenarios;

/// <summary>
/// <c>llmserver bench suite --model DIR</c>: every target of the serving benchmark in one run, so
/// that the numbers are ratios to limits measured on the same machine minutes apart:
/// the model's limits in-process, then a server started as a child process and driven over HTTP
/// at concurrency 1 and 32, 2,000 requests for memory, a repeated long system prompt for the
/// prefix cache, and what constrained decoding costs (<see cref="StructuredOutputBenchmark"/>, no target).
/// Writes a JSON file and prints a summary.
/// </summary>
public static class BenchmarkSuite
{
    public sealed record Options(string ModelDirectory, string ResultPath, int Port = 8765, int InputLength = 128, int OutputLength = 128,
        int ThroughputConcurrency = 32, int ThroughputPrompts = 64, int SingleStreamPrompts = 8, int MemoryRequests = 2000)
    {
        /// <summary>Weight forms to serve side by side as well (<see cref="WeightFormatComparison"/>); null for none.</summary>
        public IReadOnlyList<LlmServer.Inference.Quantization.WeightFormat>? WeightForms { get; init; }
    }

    public sealed record Result(
        ModelLimits Limits,
        ServingBenchmarkResult SingleStream,
        ServingBenchmarkResult Throughput,
        MemoryResult Memory,
        PrefixCacheResult PrefixCache,
        KvCacheResult KvCache,
        TargetResult Targets,
        StructuredOutputBenchmark.Result Structured,
        WeightFormatComparison.Result? WeightForms);

    /// <summary>
    /// The KV cache under the throughput load: llmserver_kv_cache_usage_perc sampled while it ran
    /// (the share of the cache's blocks requests held), and what one token costs the cache. Under
    /// grouped-query attention the cache stores KV heads only, so a token costs less and the same
    /// memory budget holds more blocks: the same load shows a lower usage.
    /// </summary>
    public sealed record KvCacheResult(double PeakUsage, double MeanUsage, int Samples, long BytesPerToken);

    public sealed record MemoryResult(int Requests, long IdleTensors, long TensorsAfter, long RssAt500, long RssAtEnd, double RssGrowthPercent, int Errors);

    public sealed record PrefixCacheResult(int SystemPromptTokens, int PromptTokens, int CachedTokens, double CachedBlockFraction,
        double FirstTtftMs, double SecondTtftMs, double TtftRatio);

    public sealed record TargetResult(
        double ComputeEfficiency, bool ComputeEfficiencyMet, double ComputeEfficiencyOfFlopsDone,
        double ComputeEfficiencyAgainstServingProducts,
        double DecodeOverWeightRead, bool SingleStreamMet,
        double ServerOverBareDecode, bool OverheadMet,
        bool MemoryMet, bool PrefixCacheMet);

    public static async Task<Result> RunAsync(Options options, TextWriter log, CancellationToken cancellationToken)
    {
        log.WriteLine($"Measuring the model's limits in-process ({options.ModelDirectory})...");
        // The bare step at the mean context the benchmark's requests decode at.
        ModelLimits limits = ModelLimits.Measure(options.ModelDirectory, contextLength: options.InputLength + options.OutputLength / 2);
        log.WriteLine($"  weights read once: {limits.WeightReadMs:F1} ms; torch.mm over the weight shapes at 256 rows: " +
            $"{limits.TorchGemmGflops256Rows:F1} GFLOP/s as x W, {limits.TorchGemmGflops256RowsWeightOnTheLeft:F1} as W^T x^T; " +
            $"serving's packed products: {limits.GemmGflops256Rows:F1} at 256 rows, {limits.GemmGflops32Rows:F1} at 32, {limits.GemmGflops1Row:F1} at 1; " +
            $"bare decode step at context {limits.ContextLength}: " +
            $"{limits.BareDecodeStepMs:F1} ms (1 sequence), {limits.BareDecodeStep32Ms:F1} ms (32); MKL dispatch: {limits.MklDispatch}");

        // Before the suite's own server starts: each form has the machine to itself.
        WeightFormatComparison.Result? weightForms = options.WeightForms is { } forms
            ? await WeightFormatComparison.RunAsync(new WeightFormatComparison.Options(options.ModelDirectory, forms)
            {
                Port = options.Port + 1, InputLength = options.InputLength, OutputLength = options.OutputLength,
                SingleStreamPrompts = options.SingleStreamPrompts, ThroughputPrompts = options.ThroughputPrompts,
                ThroughputConcurrency = options.ThroughputConcurrency,
            }, log, cancellationToken)
            : null;

        await using ChildServer server = await ChildServer.StartAsync(options.ModelDirectory, options.Port, log, cancellationToken);
        var baseUrl = new Uri($"http://127.0.0.1:{options.Port}");
        var progress = new ConsoleProgressBar();

        ServingBenchmarkOptions Load(int prompts, int? concurrency) => new()
        {
            BaseUrl = baseUrl, NumPrompts = prompts, InputLength = options.InputLength, OutputLength = options.OutputLength,
            MaxConcurrency = concurrency, Seed = 1,
        };
        log.WriteLine("Warming up...");
        await ServingBenchmark.RunAsync(Load(4, 4) with { OutputLength = 8 }, null, cancellationToken);

        log.WriteLine($"Single stream: {options.SingleStreamPrompts} requests at concurrency 1...");
        ServingBenchmarkResult single = await ServingBenchmark.RunAsync(Load(options.SingleStreamPrompts, 1), progress, cancellationToken);
        log.WriteLine(single.ToTable());

        log.WriteLine($"Throughput: {options.ThroughputPrompts} requests at concurrency {options.ThroughputConcurrency}...");
        using var sampling = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Task<List<double>> usageSamples = SampleKvCacheUsageAsync(baseUrl, sampling.Token);
        ServingBenchmarkResult throughput = await ServingBenchmark.RunAsync(Load(options.ThroughputPrompts, options.ThroughputConcurrency), progress, cancellationToken);
        await sampling.CancelAsync();
        List<double> usage = await usageSamples;
        // The mean over the samples taken while requests held blocks; the server's cache is float32 as its weights.
        List<double> busy = usage.Where(u => u > 0).DefaultIfEmpty(0).ToList();
        var kvCache = new KvCacheResult(busy.Max(), busy.Average(), usage.Count,
            PagedKvCache.BytesPerBlock(limits.Shape, blockSize: 1, TorchSharp.torch.ScalarType.Float32));
        log.WriteLine(throughput.ToTable());
        log.WriteLine($"KV cache under this load: peak {kvCache.PeakUsage:P1}, mean {kvCache.MeanUsage:P1} of its blocks ({kvCache.BytesPerToken:N0} bytes per token)");

        MemoryResult memory = await MeasureMemoryAsync(baseUrl, options.MemoryRequests, progress, log, cancellationToken);
        PrefixCacheResult prefix = await MeasurePrefixCacheAsync(baseUrl, cancellationToken);
        log.WriteLine($"Prefix cache: {prefix.CachedTokens}/{prefix.PromptTokens} prompt tokens cached ({prefix.CachedBlockFraction:P1} of the system prompt's blocks); " +
            $"TTFT {prefix.FirstTtftMs:F0} ms -> {prefix.SecondTtftMs:F0} ms ({prefix.TtftRatio:F1}x)");
        StructuredOutputBenchmark.Result structured = await StructuredOutputBenchmark.RunAsync(
            new StructuredOutputBenchmark.Options(options.ModelDirectory, options.ResultPath) { MaxTokens = options.OutputLength }, baseUrl, log, cancellationToken);

        // The definition counts every parameter for every token ...
        double flops = 2.0 * limits.Parameters * (throughput.TotalInputTokens + throughput.TotalOutputTokens);
        // Judged against the yardstick, TorchSharp's matmul at 256 rows in the faster of its two
        // orientations in this run; against the packed products serving itself runs, for comparison.
        double gemmRate = Math.Max(limits.TorchGemmGflops256Rows, limits.TorchGemmGflops256RowsWeightOnTheLeft);
        double efficiency = flops / throughput.DurationSeconds / 1e9 / gemmRate;
        double efficiencyServing = flops / throughput.DurationSeconds / 1e9 / limits.GemmGflops256Rows;
        // ... but prompt tokens never pass the LM head and no token multiplies the position table,
        // so the arithmetic actually done is less; reported beside it, for honesty.
        double actualFlops = limits.FlopsDone(throughput.TotalInputTokens, throughput.TotalOutputTokens);
        double actualEfficiency = actualFlops / throughput.DurationSeconds / 1e9 / gemmRate;
        double decodeOverRead = single.TpotMs.Mean / limits.WeightReadMs;
        double overhead = single.TpotMs.Mean / limits.BareDecodeStepMs;
        var targets = new TargetResult(
            efficiency, efficiency >= 0.70 && throughput.Failed == 0, actualEfficiency, efficiencyServing,
            decodeOverRead, decodeOverRead <= 2.0,
            overhead, overhead <= 1.3,
            memory.TensorsAfter == memory.IdleTensors && memory.RssGrowthPercent < 10 && memory.Errors == 0,
            prefix.CachedBlockFraction >= 0.9 && prefix.TtftRatio >= 3);
        var result = new Result(limits, single, throughput, memory, prefix, kvCache, targets, structured, weightForms);

        await File.WriteAllTextAsync(options.ResultPath, JsonSerializer.Serialize(result, ServingBenchmarkResult.JsonOptions), cancellationToken);
        log.WriteLine(Summary(result));
        log.WriteLine($"Wrote {options.ResultPath}");
        return result;
    }

    public static string Summary(Result result)
    {
        TargetResult t = result.Targets;
        string Mark(bool met) => met ? "met" : "MISSED";
        var text = new StringBuilder();
        text.AppendLine("================ Targets ================");
        text.AppendLine(CultureInfo.InvariantCulture, $"compute efficiency at c=32: {t.ComputeEfficiency:P1} of torch.mm's 256-row rate (target >= 70%, 0 errors): {Mark(t.ComputeEfficiencyMet)}" +
            $" (counting only the FLOPs actually done: {t.ComputeEfficiencyOfFlopsDone:P1}; against serving's packed 256-row products: {t.ComputeEfficiencyAgainstServingProducts:P1})");
        text.AppendLine(CultureInfo.InvariantCulture, $"single stream TPOT / weight read: {t.DecodeOverWeightRead:F2}x (target <= 2x): {Mark(t.SingleStreamMet)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"server TPOT / bare decode step: {t.ServerOverBareDecode:F2}x (target <= 1.3x): {Mark(t.OverheadMet)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"memory over {result.Memory.Requests} requests: tensors {result.Memory.IdleTensors} -> {result.Memory.TensorsAfter}, RSS +{result.Memory.RssGrowthPercent:F1}% from request 500: {Mark(t.MemoryMet)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"prefix cache: {result.PrefixCache.CachedBlockFraction:P1} of blocks cached, TTFT {result.PrefixCache.TtftRatio:F1}x lower (targets 90%, 3x): {Mark(t.PrefixCacheMet)}");
        text.AppendLine(CultureInfo.InvariantCulture, $"KV cache at c=32: peak {result.KvCache.PeakUsage:P1}, mean {result.KvCache.MeanUsage:P1} of its blocks; {result.KvCache.BytesPerToken:N0} bytes per token " +
            $"({result.Limits.Shape.LayerCount} layers x {result.Limits.Shape.KvHeadCount} KV heads of {result.Limits.Shape.HeadSize})");
        text.Append(StructuredOutputBenchmark.Summary(result.Structured));
        if (result.WeightForms is { } forms)
        {
            text.Append(WeightFormatComparison.Table(forms));
        }
        return text.ToString();
    }

    /// <summary>
    /// llmserver_kv_cache_usage_perc from /metrics once a second until cancelled: often enough to see
    /// the steady state of the load, and rarely enough that rendering /metrics takes no measurable
    /// share of the throughput the same run reports.
    /// </summary>
    private static async Task<List<double>> SampleKvCacheUsageAsync(Uri baseUrl, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = baseUrl };
        var samples = new List<double>();
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                samples.Add(await PrometheusScrape.ReadAsync(http, "llmserver_kv_cache_usage_perc", cancellationToken));
                await Task.Delay(1000, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
        }
        return samples;
    }

    /// <summary>2,000 short requests; tensor count and RSS from /metrics at idle, after 500 and at the end.</summary>
    private static async Task<MemoryResult> MeasureMemoryAsync(Uri baseUrl, int requests, IProgress<BenchmarkProgress> progress, TextWriter log, CancellationToken cancellationToken)
    {
        log.WriteLine($"Memory: {requests} requests...");
        using var http = new HttpClient { BaseAddress = baseUrl };
        long idleTensors = (long)await PrometheusScrape.ReadAsync(http, "llmserver_torch_live_tensors", cancellationToken);
        var shortLoad = new ServingBenchmarkOptions { BaseUrl = baseUrl, InputLength = 32, OutputLength = 8, MaxConcurrency = 16, Seed = 7 };
        ServingBenchmarkResult first = await ServingBenchmark.RunAsync(shortLoad with { NumPrompts = 500 }, progress, cancellationToken);
        long rssAt500 = (long)await PrometheusScrape.ReadAsync(http, "llmserver_process_resident_memory_bytes", cancellationToken);
        ServingBenchmarkResult rest = await ServingBenchmark.RunAsync(shortLoad with { NumPrompts = requests - 500, Seed = 8 }, progress, cancellationToken);
        long rssAtEnd = (long)await PrometheusScrape.ReadAsync(http, "llmserver_process_resident_memory_bytes", cancellationToken);
        long tensorsAfter = (long)await PrometheusScrape.ReadAsync(http, "llmserver_torch_live_tensors", cancellationToken);
        return new MemoryResult(requests, idleTensors, tensorsAfter, rssAt500, rssAtEnd, 100.0 * (rssAtEnd - rssAt500) / rssAt500, first.Failed + rest.Failed);
    }

    /// <summary>
    /// Two requests whose prompts share a 1,000-token system prompt and differ in the question
    /// after it; the second should find the shared blocks cached. Completions rather than chat,
    /// so the prompt (1,000 + question + 8 generated tokens) fits GPT-2's 1,024 positions.
    /// </summary>
    private static async Task<PrefixCacheResult> MeasurePrefixCacheAsync(Uri baseUrl, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { BaseAddress = baseUrl };
        // " Answer briefly and politely." is 5 GPT-2 tokens.
        string systemPrompt = string.Concat(Enumerable.Repeat(" Answer briefly and politely.", 200));
        var (firstTtft, _) = await TimedCompletionAsync(http, systemPrompt + "\nQ: What is the capital of France?\nA:", cancellationToken);
        var (secondTtft, secondUsage) = await TimedCompletionAsync(http, systemPrompt + "\nQ: How many legs has a spider?\nA:", cancellationToken);

        var tokenized = await http.PostAsJsonAsync("/tokenize", new { prompt = systemPrompt }, cancellationToken);
        int systemTokens = (await tokenized.Content.ReadFromJsonAsync<JsonElement>(cancellationToken)).GetProperty("count").GetInt32();
        if (secondUsage.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidOperationException("the server sent no usage chunk although stream_options.include_usage was set");
        }
        int promptTokens = secondUsage.GetProperty("prompt_tokens").GetInt32();
        int cached = secondUsage.TryGetProperty("prompt_tokens_details", out JsonElement details) ? details.GetProperty("cached_tokens").GetInt32() : 0;
        const int blockSize = 16;
        // Of the blocks the shared system prompt spans, the share that came from the cache.
        double cachedFraction = Math.Min(1.0, (double)(cached / blockSize) / Math.Ceiling(systemTokens / (double)blockSize));
        return new PrefixCacheResult(systemTokens, promptTokens, cached, cachedFraction, firstTtft, secondTtft, firstTtft / secondTtft);
    }

    private static async Task<(double TtftMs, JsonElement Usage)> TimedCompletionAsync(HttpClient http, string prompt, CancellationToken cancellationToken)
    {
        string body = JsonSerializer.Serialize(new
        {
            prompt,
            max_tokens = 8,
            temperature = 0,
            stream = true,
            stream_options = new { include_usage = true },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        long start = Stopwatch.GetTimestamp();
        using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        response.EnsureSuccessStatusCode();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancellationToken));
        double? ttft = null;
        JsonElement usage = default;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            if (!line.StartsWith("data: {", StringComparison.Ordinal))
            {
                continue;
            }
            JsonElement chunk = JsonDocument.Parse(line["data: ".Length..]).RootElement;
            if (ttft is null && chunk.GetProperty("choices").EnumerateArray().Any(c => c.GetProperty("text").GetString() is { Length: > 0 }))
            {
                ttft = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            }
            if (chunk.TryGetProperty("usage", out JsonElement u) && u.ValueKind == JsonValueKind.Object)
            {
                usage = u.Clone();
            }
        }
        return (ttft ?? Stopwatch.GetElapsedTime(start).TotalMilliseconds, usage);
    }
}
