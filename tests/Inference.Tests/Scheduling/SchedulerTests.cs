using LlmServer.Inference.Scheduling;
using static LlmServer.Inference.Tests.Scheduling.SchedulerSteps;

namespace LlmServer.Inference.Tests.Scheduling;

public class SchedulerTests
{
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
}
