using LlmServer.Inference.KvCache;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Tests.Scheduling;

public class SchedulerTests
{
    private static Request NewRequest(string id, int promptLength, int maxTokens = 16, long arrival = 0) =>
        new(id, Enumerable.Range(1, promptLength).ToArray(), new SamplingParameters { MaxTokens = maxTokens }, arrival);

    // Prefix caching is off unless a test is about it: the prompts here share token ranges.
    private static (Scheduler Scheduler, KvCacheManager Cache) NewScheduler(int blocks = 64, int blockSize = 4, int budget = 32, int maxSeqs = 8,
        bool prefixCaching = false)
    {
        var cache = new KvCacheManager(new BlockPool(blocks), blockSize, prefixCaching);
        return (new Scheduler(new SchedulerOptions { MaxNumBatchedTokens = budget, MaxNumSeqs = maxSeqs }, cache), cache);
    }

    /// <summary>Runs one step as the engine would: commit the computed tokens and sample one token where due.</summary>
    private static SchedulerOutput Step(Scheduler scheduler)
    {
        SchedulerOutput output = scheduler.Schedule();
        var sampling = output.Scheduled.Where(s => s.SamplesToken).Select(s => s.Request).ToList();
        scheduler.CommitStep(output);
        foreach (Request request in sampling)
        {
            request.AppendOutputToken(7);
        }
        return output;
    }

    [Fact]
    public void Admits_new_requests_within_the_token_budget_and_allocates_their_blocks()
    {
        var (scheduler, cache) = NewScheduler(budget: 32);
        Request a = NewRequest("a", 10), b = NewRequest("b", 10);
        scheduler.Add(a);
        scheduler.Add(b);

        SchedulerOutput output = scheduler.Schedule();

        Assert.Equal([("a", 10), ("b", 10)], output.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
        Assert.All(output.Scheduled, s => Assert.True(s.SamplesToken));
        Assert.Equal(3, cache.BlockTable("a").Count);   // 10 tokens in blocks of 4
        Assert.Equal(6, cache.Pool.UsedBlockCount);
        Assert.Equal(2, scheduler.RunningCount);
    }

    [Fact]
    public void Long_prompts_are_prefilled_in_chunks_while_running_requests_keep_decoding()
    {
        var (scheduler, _) = NewScheduler(budget: 16);
        Request first = NewRequest("first", 4);
        scheduler.Add(first);
        Step(scheduler);                                     // first: prompt done, one token sampled
        Request longPrompt = NewRequest("long", 40, arrival: 1);
        scheduler.Add(longPrompt);

        SchedulerOutput second = Step(scheduler);
        Assert.Equal([("first", 1), ("long", 15)], second.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
        Assert.False(second.Scheduled[1].SamplesToken);      // a chunk in the middle of the prompt samples nothing

        SchedulerOutput third = Step(scheduler);
        Assert.Equal([("first", 1), ("long", 15)], third.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
        SchedulerOutput fourth = Step(scheduler);
        Assert.Equal([("first", 1), ("long", 10)], fourth.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
        Assert.True(fourth.Scheduled[1].SamplesToken);       // last chunk reaches the end of the prompt
        Assert.Equal(40, longPrompt.NumComputedTokens);
        Assert.Equal(41, longPrompt.NumTokens);
    }

    [Fact]
    public void Never_runs_more_than_max_num_seqs_at_once()
    {
        var (scheduler, _) = NewScheduler(budget: 100, maxSeqs: 2);
        for (int i = 0; i < 5; i++)
        {
            scheduler.Add(NewRequest($"r{i}", 3, arrival: i));
        }
        SchedulerOutput output = scheduler.Schedule();
        Assert.Equal(["r0", "r1"], output.Scheduled.Select(s => s.Request.RequestId));
        Assert.Equal(3, scheduler.WaitingCount);
    }

    [Fact]
    public void Running_out_of_blocks_preempts_the_newest_request_which_is_recomputed_later()
    {
        // 4 blocks of 4 tokens: two requests of 7 prompt tokens fill them once each grows past 8.
        var (scheduler, cache) = NewScheduler(blocks: 4, blockSize: 4, budget: 64);
        Request older = NewRequest("older", 7, maxTokens: 8, arrival: 0);
        Request newer = NewRequest("newer", 7, maxTokens: 8, arrival: 1);
        scheduler.Add(older);
        scheduler.Add(newer);
        Step(scheduler);                 // both prefilled: 7 computed + 1 sampled, 2 blocks each
        Step(scheduler);                 // both decode position 7, still inside their second block
        Assert.Equal(0, cache.Pool.FreeBlockCount);

        SchedulerOutput output = Step(scheduler);   // older reaches position 8, a third block: newer must go

        Assert.Equal(["newer"], output.Preempted.Select(r => r.RequestId));
        Assert.Equal(["older"], output.Scheduled.Select(s => s.Request.RequestId));
        Assert.Equal(RequestStatus.Preempted, newer.Status);
        Assert.Equal(0, newer.NumComputedTokens);
        Assert.Empty(cache.BlockTable("newer"));
        Assert.Equal(9, newer.NumTokens);             // its sampled tokens are kept and recomputed

        scheduler.Finish(older);
        SchedulerOutput resumed = scheduler.Schedule();
        Assert.Equal([("newer", 9)], resumed.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
        Assert.True(resumed.Scheduled[0].SamplesToken);
    }

    [Fact]
    public void A_preempted_request_takes_back_its_own_blocks_that_are_still_cached()
    {
        var (scheduler, _) = NewScheduler(blocks: 4, blockSize: 4, budget: 64, prefixCaching: true);
        Request older = RequestWithPrompt("older", Enumerable.Range(100, 7).ToArray(), maxTokens: 8);
        Request newer = RequestWithPrompt("newer", Enumerable.Range(500, 7).ToArray(), maxTokens: 8, arrival: 1);
        scheduler.Add(older);
        scheduler.Add(newer);
        Step(scheduler);
        Step(scheduler);
        Assert.Equal(["newer"], Step(scheduler).Preempted.Select(r => r.RequestId));
        scheduler.Finish(older);

        SchedulerOutput resumed = scheduler.Schedule();

        // Its 2 full blocks were released tail first; the older request took the tail one, the
        // first survived in the cache, so only 9 - 4 tokens are recomputed.
        Assert.Equal([("newer", 5)], resumed.Scheduled.Select(s => (s.Request.RequestId, s.NumScheduledTokens)));
    }

    [Fact]
    public void Finishing_a_request_frees_its_blocks_at_once()
    {
        var (scheduler, cache) = NewScheduler();
        Request a = NewRequest("a", 9);
        scheduler.Add(a);
        Step(scheduler);
        Assert.Equal(3, cache.Pool.UsedBlockCount);

        scheduler.Finish(a);

        Assert.Equal(0, cache.Pool.UsedBlockCount);
        Assert.Equal(0, scheduler.RunningCount);
        Assert.False(scheduler.HasWork);
        Assert.Equal(RequestStatus.Finished, a.Status);
    }

    [Fact]
    public void A_waiting_request_that_does_not_fit_waits_instead_of_evicting_running_ones()
    {
        var (scheduler, cache) = NewScheduler(blocks: 3, blockSize: 4, budget: 64);
        Request running = NewRequest("running", 8, maxTokens: 4);
        scheduler.Add(running);
        Step(scheduler);
        Request big = NewRequest("big", 8, maxTokens: 4, arrival: 1);
        scheduler.Add(big);

        SchedulerOutput output = scheduler.Schedule();

        Assert.Equal(["running"], output.Scheduled.Select(s => s.Request.RequestId));
        Assert.Empty(output.Preempted);
        Assert.Equal(1, scheduler.WaitingCount);
        Assert.Equal(3, cache.Pool.UsedBlockCount);
    }

    [Fact]
    public void A_request_larger_than_the_whole_cache_is_refused_up_front()
    {
        var (scheduler, _) = NewScheduler(blocks: 2, blockSize: 4);
        Assert.Throws<ArgumentException>(() => scheduler.Add(NewRequest("huge", 6, maxTokens: 8)));
    }

    [Fact]
    public void Block_pool_refuses_double_release()
    {
        var pool = new BlockPool(2);
        var taken = new List<int>();
        Assert.True(pool.TryAllocate(2, taken));
        Assert.False(pool.TryAllocate(1, taken));
        pool.Release(taken);
        Assert.Equal(2, pool.FreeBlockCount);
        Assert.Throws<InvalidOperationException>(() => pool.Release(taken));
    }

    private static Request RequestWithPrompt(string id, int[] prompt, int maxTokens = 4, long arrival = 0) =>
        new(id, prompt, new SamplingParameters { MaxTokens = maxTokens }, arrival);

    private static void RunToCompletion(Scheduler scheduler, Request request)
    {
        while (request.NumOutputTokens < request.Sampling.MaxTokens)
        {
            Step(scheduler);
        }
        scheduler.Finish(request);
    }

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
