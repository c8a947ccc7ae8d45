using LlmServer.Inference.Engine;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Engine;

/// <summary>
/// A bfloat16 KV cache in the memory a float32 one takes: twice the blocks, so twice the long requests run at once.
/// The model is tiny and random; only the cache's bookkeeping matters here.
/// </summary>
public sealed class KvCacheDtypeTests : IDisposable
{
    private const int BlockSize = 16;
    private const int PromptLength = 1000;
    private const int OutputTokens = 4;
    /// <summary>1,000 prompt tokens and the generated ones but the last fill 63 blocks of 16.</summary>
    private const int BlocksPerRequest = (PromptLength + OutputTokens - 1 + BlockSize - 1) / BlockSize;
    /// <summary>The requests a float32 cache holds at once.</summary>
    private const int Float32Requests = 2;

    private static readonly Gpt2Config Config = new() { LayerCount = 2, EmbeddingSize = 64, HeadCount = 4, MaxPositions = 1100 };

    private readonly string _modelDirectory = Directory.CreateTempSubdirectory("kv-cache-dtype-").FullName;

    public KvCacheDtypeTests() => RandomCheckpoint.Create(Config, _modelDirectory, TestFixtures.TokenizerDirectory, seed: 2);

    public void Dispose() => Directory.Delete(_modelDirectory, recursive: true);

    /// <summary>Exactly <see cref="Float32Requests"/> requests' blocks at float32.</summary>
    private static long CacheBytes => Float32Requests * BlocksPerRequest * PagedKvCache.BytesPerBlock(Config, BlockSize, ScalarType.Float32);

    [Fact]
    public void A_bfloat16_block_takes_half_the_bytes_of_a_float32_one()
    {
        Assert.Equal(PagedKvCache.BytesPerBlock(Config, BlockSize, ScalarType.Float32),
            2 * PagedKvCache.BytesPerBlock(Config, BlockSize, ScalarType.BFloat16));
    }

    [Theory]
    [InlineData(ScalarType.Float32, Float32Requests)]
    [InlineData(ScalarType.BFloat16, 2 * Float32Requests)]
    public async Task In_the_same_memory_a_bfloat16_cache_runs_twice_the_1000_token_requests_at_once(ScalarType cacheDtype, int expectedAtOnce)
    {
        await using var engine = new EngineClient(new EngineOptions
        {
            ModelDirectory = _modelDirectory,
            ServedModelName = "kv-cache-dtype",
            BlockSize = BlockSize,
            KvCacheMemoryBytes = CacheBytes,
            KvCacheDtype = cacheDtype,
        });
        await engine.Ready;
        using var done = new CancellationTokenSource();
        Task<int> mostRunningSeen = WatchRunningRequests(engine, done.Token);

        var random = new Random(4);
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = OutputTokens, IgnoreEos = true };
        RequestTimings[] timings = await Task.WhenAll(Enumerable.Range(0, 2 * Float32Requests).Select(i =>
            // Prompts differ, so no request reuses another's blocks through the prefix cache.
            RunAsync(engine, new EngineSubmission($"long-{i}", Enumerable.Range(0, PromptLength).Select(_ => random.Next(Config.VocabSize)).ToArray(), sampling))));
        await done.CancelAsync();

        Assert.Equal(expectedAtOnce * BlocksPerRequest, engine.Statistics.TotalBlocks);
        // The engine's own record of when each request first ran and when it finished: the most that overlapped.
        int mostAtOnce = timings.Max(r => timings.Count(q => q.FirstScheduledTimestamp <= r.FirstScheduledTimestamp && r.FirstScheduledTimestamp < q.FinishedTimestamp));
        Assert.Equal(expectedAtOnce, mostAtOnce);
        // Sampling the running count may miss the peak, but never sees more than the cache holds.
        Assert.InRange(await mostRunningSeen, 0, expectedAtOnce);
        Assert.Equal(0, engine.Statistics.Preemptions);
    }

    private static async Task<RequestTimings> RunAsync(EngineClient engine, EngineSubmission submission)
    {
        RequestTimings? timings = null;
        int tokens = 0;
        await foreach (GenerationEvent generated in engine.GenerateAsync(submission))
        {
            Assert.Null(generated.ErrorMessage);
            tokens += generated.Tokens.Count;
            timings = generated.Timings ?? timings;
        }
        Assert.Equal(OutputTokens, tokens);
        return timings!;
    }

    private static async Task<int> WatchRunningRequests(EngineClient engine, CancellationToken done)
    {
        int most = 0;
        while (!done.IsCancellationRequested)
        {
            most = Math.Max(most, engine.Statistics.RunningRequests);
            await Task.Delay(1, CancellationToken.None);
        }
        return most;
    }
}
