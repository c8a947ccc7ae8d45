using LlmServer.Inference.KvCache;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Tests.Scheduling;

/// <summary>Requests, a scheduler over a small block pool, and steps run the way the engine runs them, without a model.</summary>
internal static class SchedulerSteps
{
    public static Request NewRequest(string id, int promptLength, int maxTokens = 16, long arrival = 0) =>
        new(id, Enumerable.Range(1, promptLength).ToArray(), new SamplingParameters { MaxTokens = maxTokens }, arrival);

    // Prefix caching is off unless a test is about it: the prompts here share token ranges.
    public static (Scheduler Scheduler, KvCacheManager Cache) NewScheduler(int blocks = 64, int blockSize = 4, int budget = 32, int maxSeqs = 8,
        bool prefixCaching = false)
    {
        var cache = new KvCacheManager(new BlockPool(blocks), blockSize, prefixCaching);
        return (new Scheduler(new SchedulerOptions { MaxNumBatchedTokens = budget, MaxNumSeqs = maxSeqs }, cache), cache);
    }

    /// <summary>Runs one step as the engine would: commit the computed tokens and sample one token where due.</summary>
    public static SchedulerOutput Step(Scheduler scheduler)
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

    public static Request RequestWithPrompt(string id, int[] prompt, int maxTokens = 4, long arrival = 0) =>
        new(id, prompt, new SamplingParameters { MaxTokens = maxTokens }, arrival);

    public static void RunToCompletion(Scheduler scheduler, Request request)
    {
        while (request.NumOutputTokens < request.Sampling.MaxTokens)
        {
            Step(scheduler);
        }
        scheduler.Finish(request);
    }
}
