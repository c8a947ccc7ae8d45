using LlmServer.Inference.Scheduling;
using static LlmServer.Inference.Tests.Scheduling.SchedulerSteps;

namespace LlmServer.Inference.Tests.KvCache;

/// <summary>The KV cache manager's prefix cache, driven by the scheduler as the engine drives it.</summary>
public class PrefixCachingTests
{
    [Fact]
    public void A_prompt_that_starts_with_cached_blocks_reuses_them_and_computes_only_the_rest()
    {
        var (scheduler, cache) = NewScheduler(blockSize: 4, budget: 64, prefixCaching: true);
        int[] prompt = Enumerable.Range(100, 40).ToArray();
        Request first = RequestWithPrompt("first", prompt);
        scheduler.Add(first);
        Step(scheduler);
        IReadOnlyList<int> firstBlocks = cache.BlockTable("first").ToArray();
        RunToCompletion(scheduler, first);

        Request second = RequestWithPrompt("second", [.. prompt[..36], 7, 8, 9, 10], arrival: 1);
        scheduler.Add(second);
        SchedulerOutput output = scheduler.Schedule();

        // 9 full blocks (36 tokens) match; the differing last block is computed.
        Assert.Equal([("second", 4)], output.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
        Assert.Equal(36, output.Scheduled[0].FirstPosition);
        Assert.Equal(36, second.NumCachedTokens);
        Assert.Equal(firstBlocks.Take(9), cache.BlockTable("second").Take(9));
        Assert.Equal(40 + 40, cache.PrefixCacheQueries);
        Assert.Equal(36, cache.PrefixCacheHits);
    }

    [Fact]
    public void The_whole_prompt_cached_still_leaves_the_last_token_to_compute()
    {
        var (scheduler, _) = NewScheduler(blockSize: 4, budget: 64, prefixCaching: true);
        int[] prompt = Enumerable.Range(100, 16).ToArray();
        Request first = RequestWithPrompt("first", prompt);
        scheduler.Add(first);
        RunToCompletion(scheduler, first);

        Request again = RequestWithPrompt("again", prompt, arrival: 1);
        scheduler.Add(again);
        SchedulerOutput output = scheduler.Schedule();

        Assert.Equal([("again", 4)], output.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
        Assert.True(output.Scheduled[0].SamplesToken);
        Assert.Equal(12, again.NumCachedTokens);
    }

    [Fact]
    public void Requests_running_together_share_their_common_blocks()
    {
        var (scheduler, cache) = NewScheduler(blockSize: 4, budget: 64, prefixCaching: true);
        int[] prompt = Enumerable.Range(100, 20).ToArray();
        Request first = RequestWithPrompt("first", prompt, maxTokens: 8);
        scheduler.Add(first);
        Step(scheduler);
        Request second = RequestWithPrompt("second", prompt, maxTokens: 8, arrival: 1);
        scheduler.Add(second);
        Step(scheduler);

        IReadOnlyList<int> shared = cache.BlockTable("first").Take(4).ToArray();
        Assert.Equal(shared, cache.BlockTable("second").Take(4));
        Assert.All(shared, block => Assert.Equal(2, cache.Pool.ReferenceCount(block)));

        scheduler.Finish(first);
        Assert.All(shared, block => Assert.Equal(1, cache.Pool.ReferenceCount(block)));
        scheduler.Finish(second);
        Assert.Equal(0, cache.Pool.UsedBlockCount);
        Assert.True(cache.Pool.CachedBlockCount >= 5);
    }

    [Fact]
    public void Cached_blocks_nobody_holds_are_evicted_oldest_first_when_the_pool_needs_them()
    {
        var (scheduler, cache) = NewScheduler(blocks: 6, blockSize: 4, budget: 64, prefixCaching: true);
        int[] promptA = Enumerable.Range(100, 9).ToArray();   // 2 full blocks + 1 token
        int[] promptB = Enumerable.Range(500, 9).ToArray();
        Request a = RequestWithPrompt("a", promptA, maxTokens: 2);
        scheduler.Add(a);
        RunToCompletion(scheduler, a);
        Request b = RequestWithPrompt("b", promptB, maxTokens: 2, arrival: 1);
        scheduler.Add(b);
        RunToCompletion(scheduler, b);
        Assert.Equal(0, cache.Pool.UsedBlockCount);

        // Needs 4 blocks of the 6: the 3 free ones that hold nothing go first, then a's oldest block.
        Request c = RequestWithPrompt("c", Enumerable.Range(900, 13).ToArray(), maxTokens: 2, arrival: 2);
        scheduler.Add(c);
        scheduler.Schedule();

        Request bAgain = RequestWithPrompt("b-again", promptB, maxTokens: 2, arrival: 3);
        Assert.Equal(2, cache.FindCachedPrefix(bAgain).Count);
        Request aAgain = RequestWithPrompt("a-again", promptA, maxTokens: 2, arrival: 4);
        Assert.True(cache.FindCachedPrefix(aAgain).Count < 2);
    }

    [Fact]
    public void With_prefix_caching_off_nothing_is_reused()
    {
        var (scheduler, cache) = NewScheduler(blockSize: 4, budget: 64, prefixCaching: false);
        int[] prompt = Enumerable.Range(100, 20).ToArray();
        Request first = RequestWithPrompt("first", prompt);
        scheduler.Add(first);
        RunToCompletion(scheduler, first);
        Request second = RequestWithPrompt("second", prompt, arrival: 1);
        scheduler.Add(second);
        SchedulerOutput output = scheduler.Schedule();
        Assert.Equal(20, output.Scheduled[0].NumScheduledTokens);
        Assert.Equal(0, cache.Pool.CachedBlockCount);
        Assert.Equal(0, cache.PrefixCacheQueries);
    }

    [Fact]
    public void Forgetting_all_content_stops_reuse_of_stale_blocks()
    {
        var (scheduler, cache) = NewScheduler(blockSize: 4, budget: 64, prefixCaching: true);
        int[] prompt = Enumerable.Range(100, 20).ToArray();
        Request first = RequestWithPrompt("first", prompt);
        scheduler.Add(first);
        RunToCompletion(scheduler, first);

        cache.Pool.ForgetAllContent();

        Assert.Empty(cache.FindCachedPrefix(RequestWithPrompt("second", prompt)));
    }

    [Fact]
    public void A_request_running_when_content_is_forgotten_never_publishes_its_blocks()
    {
        var (scheduler, cache) = NewScheduler(blockSize: 4, budget: 64, prefixCaching: true);
        int[] prompt = Enumerable.Range(100, 10).ToArray();
        Request running = RequestWithPrompt("running", prompt, maxTokens: 12);
        scheduler.Add(running);
        Step(scheduler);

        cache.Pool.ForgetAllContent();
        RunToCompletion(scheduler, running);

        Assert.Equal(0, cache.Pool.CachedBlockCount);
        Assert.Empty(cache.FindCachedPrefix(RequestWithPrompt("after", [.. prompt, .. running.OutputTokenIds])));
    }
}
