using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using LlmServer.Inference.Tests.Models;

namespace LlmServer.Inference.Tests.Engine;

/// <summary>
/// Prompt logprobs against the fixtures' reference: when the prompt is a reference prompt followed by its greedy
/// continuation, the logprob of each continuation token given the tokens before it is the reference's greedy logprob.
/// </summary>
public class PromptLogprobsTests
{
    private const double LogprobTolerance = 2e-3;

    [Theory]
    [MemberData(nameof(ReferenceCase.Models), MemberType = typeof(ReferenceCase))]
    public async Task Prompt_logprobs_at_the_greedy_positions_match_the_reference(string model)
    {
        await using var engine = EngineFactory.Start(model);
        foreach ((ReferenceCase reference, int i) in ReferenceCase.Load(model).Select((c, i) => (c, i)))
        {
            GenerationEvent withPrompt = await PromptLogprobsOf(engine, $"case-{i}", reference);
            AssertMatches(reference, withPrompt.PromptLogprobs!);
        }
    }

    /// <summary>A small token budget computes each prompt over several steps, next to the other cases' chunks.</summary>
    [Theory]
    [MemberData(nameof(ReferenceCase.Models), MemberType = typeof(ReferenceCase))]
    public async Task Chunked_prefill_gives_the_same_prompt_logprobs(string model)
    {
        IReadOnlyList<ReferenceCase> cases = ReferenceCase.Load(model);
        await using var engine = EngineFactory.Start(model, scheduler: new SchedulerOptions { MaxNumSeqs = cases.Count, MaxNumBatchedTokens = 7 });

        GenerationEvent[] results = await Task.WhenAll(cases.Select((reference, i) => PromptLogprobsOf(engine, $"case-{i}", reference)));

        foreach ((ReferenceCase reference, GenerationEvent withPrompt) in cases.Zip(results))
        {
            AssertMatches(reference, withPrompt.PromptLogprobs!);
        }
    }

    /// <summary>A warm prefix would skip the positions asked about, so such a request computes its whole prompt.</summary>
    [Theory]
    [MemberData(nameof(ReferenceCase.Models), MemberType = typeof(ReferenceCase))]
    public async Task A_warm_prefix_cache_is_not_used_for_a_request_that_asks_for_prompt_logprobs(string model)
    {
        ReferenceCase reference = ReferenceCase.Load(model)[^1];
        // Small blocks, so even the shortest fixture prompt fills some.
        await using var engine = new EngineClient(new EngineOptions
        {
            ModelDirectory = TestFixtures.ModelDirectory(model), ServedModelName = model, KvCacheMemoryBytes = 16L << 20, BlockSize = 4,
        });
        int[] prompt = [.. reference.PromptIds, .. reference.GreedyIds];
        var plain = new SamplingParameters { Temperature = 0, MaxTokens = 1 };
        await Collect(engine, new EngineSubmission("warm", prompt, plain));
        GenerationEvent warmHit = (await Collect(engine, new EngineSubmission("hit", prompt, plain)))[^1];
        Assert.True(warmHit.CachedPromptTokenCount > 0);

        GenerationEvent withPrompt = await PromptLogprobsOf(engine, "asks", reference);

        Assert.Equal(0, withPrompt.CachedPromptTokenCount);
        AssertMatches(reference, withPrompt.PromptLogprobs!);
    }

    [Fact]
    public async Task Requests_that_do_not_ask_get_no_prompt_logprobs()
    {
        ReferenceCase reference = ReferenceCase.Load("gpt2-random-2l-64d")[0];
        await using var engine = EngineFactory.Start(reference.Model);

        List<GenerationEvent> events = await Collect(engine, new EngineSubmission("plain", reference.PromptIds,
            new SamplingParameters { Temperature = 0, MaxTokens = 3, Logprobs = 2 }));

        Assert.All(events, e => Assert.Null(e.PromptLogprobs));
    }

    /// <summary>Returns the one event that carries the prompt logprobs, checking that exactly one does.</summary>
    private static async Task<GenerationEvent> PromptLogprobsOf(EngineClient engine, string id, ReferenceCase reference)
    {
        int[] prompt = [.. reference.PromptIds, .. reference.GreedyIds];
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = 2, IgnoreEos = true, PromptLogprobs = 5 };
        List<GenerationEvent> events = await Collect(engine, new EngineSubmission(id, prompt, sampling));
        GenerationEvent carrying = Assert.Single(events, e => e.PromptLogprobs is not null);
        Assert.Equal(prompt.Length, carrying.PromptLogprobs!.Count);
        return carrying;
    }

    private static async Task<List<GenerationEvent>> Collect(EngineClient engine, EngineSubmission submission)
    {
        var events = new List<GenerationEvent>();
        await foreach (GenerationEvent generated in engine.GenerateAsync(submission))
        {
            Assert.Null(generated.ErrorMessage);
            events.Add(generated);
        }
        return events;
    }

    private static void AssertMatches(ReferenceCase reference, IReadOnlyList<PromptTokenLogprob?> promptLogprobs)
    {
        Assert.Null(promptLogprobs[0]);
        for (int step = 0; step < reference.GreedyIds.Length; step++)
        {
            PromptTokenLogprob logprob = promptLogprobs[reference.PromptIds.Length + step]!;
            Assert.Equal(reference.GreedyIds[step], logprob.TokenId);
            Assert.InRange(logprob.Logprob, reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
            // The greedy token was the likeliest.
            Assert.Equal(1, logprob.Rank);
            Assert.Equal(reference.GreedyTop5Ids[step], logprob.TopLogprobs!.Select(t => t.TokenId));
        }
        // The prompt's own tokens were not picked by the model, but each has a finite logprob and a rank.
        Assert.All(promptLogprobs.Skip(1), p => Assert.True(p!.Logprob <= 0 && p.Rank >= 1));
    }
}
