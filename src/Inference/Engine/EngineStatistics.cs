using LlmServer.Inference.KvCache;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>A snapshot the engine thread publishes after each step, read by metrics and health checks.</summary>
public sealed record EngineStatistics(
    int RunningRequests,
    int WaitingRequests,
    double KvCacheUsage,
    int FreeBlocks,
    int TotalBlocks,
    long PromptTokens,
    long GenerationTokens,
    long Preemptions,
    long AbortedRequests,
    long PrefixCacheQueries = 0,
    long PrefixCacheHits = 0)
{
    public static EngineStatistics Idle { get; } = new(0, 0, 0, 0, 0, 0, 0, 0, 0);

    internal static EngineStatistics Of(Scheduler scheduler, ActiveRequests requests)
    {
        KvCacheManager cache = scheduler.Cache;
        return new EngineStatistics(scheduler.RunningCount, scheduler.WaitingCount, cache.Pool.Usage, cache.Pool.FreeBlockCount, cache.Pool.BlockCount,
            scheduler.NumComputedPromptTokens, requests.GeneratedTokenCount, scheduler.NumPreemptions, requests.AbortedCount,
            cache.PrefixCacheQueries, cache.PrefixCacheHits);
    }
}
