using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using LlmServer.Inference.Tests.Models;

namespace LlmServer.Inference.Tests.Engine;

/// <summary>The engine's generation behaviour on a real fixture model: stopping, sampling, cancelling, batching.</summary>
public sealed class EngineGenerationTests : IAsyncLifetime
{
    private const string Fixture = "gpt2-random-2l-64d";
    private static readonly ReferenceCase Reference = ReferenceCase.Load(Fixture)[0];
    private EngineClient _engine = null!;

    public Task InitializeAsync()
    {
        _engine = EngineFactory.Start(Fixture);
        return _engine.Ready;
    }

    public async Task DisposeAsync() => await _engine.DisposeAsync();

    private async Task<(string Text, List<GeneratedToken> Tokens, GenerationEvent Final)> RunAsync(
        SamplingParameters sampling, IReadOnlyList<int>? prompt = null, string id = "test")
    {
        var tokens = new List<GeneratedToken>();
        string text = "";
        GenerationEvent? final = null;
        await foreach (GenerationEvent generated in _engine.GenerateAsync(new EngineSubmission(id, prompt ?? Reference.PromptIds, sampling)))
        {
            tokens.AddRange(generated.Tokens);
            text += generated.TextDelta;
            final = generated;
        }
        Assert.True(final!.IsFinal);
        return (text, tokens, final);
    }

    private static SamplingParameters Greedy(int maxTokens) => new() { Temperature = 0, MaxTokens = maxTokens, IgnoreEos = true };

    [Fact]
    public async Task Max_tokens_ends_with_length_and_exact_counts()
    {
        var (text, tokens, final) = await RunAsync(Greedy(5));
        Assert.Equal(FinishReason.Length, final.FinishReason);
        Assert.Equal(5, final.OutputTokenCount);
        Assert.Equal(Reference.PromptIds.Length, final.PromptTokenCount);
        Assert.Equal(Reference.GreedyIds[..5], tokens.Select(t => t.TokenId));
        Assert.StartsWith(text, Reference.GreedyText, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_stop_string_that_spans_tokens_ends_generation_and_is_not_returned()
    {
        // The reference continuation is " flo EV investigations EV Redd..."; "gations EV" starts inside
        // " investigations" and ends in the next token.
        var sampling = Greedy(12) with { StopStrings = ["gations EV"] };
        var (text, _, final) = await RunAsync(sampling);
        Assert.Equal(" flo EV investi", text);
        Assert.Equal(FinishReason.Stop, final.FinishReason);
        Assert.Equal("gations EV", final.StopReason);
        Assert.Equal(4, final.OutputTokenCount);
    }

    [Fact]
    public async Task Text_that_could_become_a_stop_string_is_held_back_then_released()
    {
        // " EV" could start " EVX" until the next token shows it does not.
        var sampling = Greedy(3) with { StopStrings = [" EVX"] };
        var deltas = new List<string>();
        await foreach (GenerationEvent generated in _engine.GenerateAsync(new EngineSubmission("holdback", Reference.PromptIds, sampling)))
        {
            deltas.Add(generated.TextDelta);
        }
        Assert.Equal([" flo", "", " EV investigations"], deltas);
    }

    [Fact]
    public async Task A_stop_token_ends_generation_without_its_text()
    {
        int stopToken = Reference.GreedyIds[2];
        var (text, tokens, final) = await RunAsync(Greedy(12) with { StopTokenIds = [stopToken] });
        Assert.Equal(" flo EV", text);
        Assert.Equal(FinishReason.Stop, final.FinishReason);
        Assert.Equal(3, tokens.Count);
    }

    [Fact]
    public async Task End_of_text_stops_unless_ignored_and_min_tokens_suppresses_it()
    {
        // A logit bias makes end-of-text the greedy choice at every step.
        var eosBias = new Dictionary<int, double> { [50256] = 100 };
        var stopping = await RunAsync(new SamplingParameters { Temperature = 0, MaxTokens = 8, LogitBias = eosBias });
        Assert.Equal(FinishReason.Stop, stopping.Final.FinishReason);
        Assert.Equal("", stopping.Text);
        Assert.Equal(1, stopping.Final.OutputTokenCount);

        var minimum = await RunAsync(new SamplingParameters { Temperature = 0, MaxTokens = 8, LogitBias = eosBias, MinTokens = 3 });
        Assert.Equal(4, minimum.Final.OutputTokenCount);
        Assert.Equal(50256, minimum.Tokens[^1].TokenId);
        Assert.DoesNotContain(50256, minimum.Tokens.Take(3).Select(t => t.TokenId));

        var ignoring = await RunAsync(new SamplingParameters { Temperature = 0, MaxTokens = 4, LogitBias = eosBias, IgnoreEos = true });
        Assert.Equal(FinishReason.Length, ignoring.Final.FinishReason);
        Assert.All(ignoring.Tokens, t => Assert.Equal(50256, t.TokenId));
    }

    [Fact]
    public async Task The_same_seed_gives_the_same_sample_and_another_seed_a_different_one()
    {
        var sampling = new SamplingParameters { Temperature = 1.0, TopP = 0.9, MaxTokens = 16, IgnoreEos = true, Seed = 1234 };
        var first = await RunAsync(sampling, id: "a");
        var again = await RunAsync(sampling, id: "b");
        var other = await RunAsync(sampling with { Seed = 99 }, id: "c");
        Assert.Equal(first.Tokens.Select(t => t.TokenId), again.Tokens.Select(t => t.TokenId));
        Assert.NotEqual(first.Tokens.Select(t => t.TokenId), other.Tokens.Select(t => t.TokenId));
        Assert.NotEqual(Reference.GreedyIds.Take(16), first.Tokens.Select(t => t.TokenId));
    }

    [Fact]
    public async Task Top_k_one_is_greedy_whatever_the_temperature()
    {
        var (_, tokens, _) = await RunAsync(new SamplingParameters { Temperature = 1.5, TopK = 1, MaxTokens = 12, IgnoreEos = true, Seed = 5 });
        Assert.Equal(Reference.GreedyIds, tokens.Select(t => t.TokenId));
    }

    [Fact]
    public async Task Cancelling_a_request_frees_its_blocks()
    {
        using var cancel = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (GenerationEvent _ in _engine.GenerateAsync(new EngineSubmission("cancel", Reference.PromptIds, Greedy(100)), cancel.Token))
            {
                if (++seen == 3)
                {
                    // The engine may already have run the whole request while this loop was descheduled (a loaded
                    // machine): its blocks are then free already. While it still runs, it holds some.
                    EngineStatistics now = _engine.Statistics;
                    Assert.True(now.RunningRequests == 0 || now.KvCacheUsage > 0, $"{now}");
                    await cancel.CancelAsync();
                }
            }
        });
        await Poll.UntilAsync(() => _engine.Statistics is { RunningRequests: 0, WaitingRequests: 0 } s && s.FreeBlocks == s.TotalBlocks,
            TimeSpan.FromSeconds(10), "the engine to be idle with every block free", () => $"{_engine.Statistics}");
    }

    [Fact]
    public async Task A_greedy_request_gives_the_same_tokens_alone_or_among_31_others()
    {
        var alone = await RunAsync(Greedy(12), id: "alone");
        var prompts = ReferenceCase.Load(Fixture).Select(c => c.PromptIds).ToArray();
        Task<(string, List<GeneratedToken>, GenerationEvent)>[] crowd = Enumerable.Range(0, 32).Select(i => RunAsync(
            i == 0 ? Greedy(12) : new SamplingParameters { Temperature = 0.8, MaxTokens = 10 + i % 7, IgnoreEos = true, Seed = i },
            prompts[i % prompts.Length], id: $"crowd-{i}")).ToArray();
        var results = await Task.WhenAll(crowd);
        Assert.Equal(alone.Tokens.Select(t => t.TokenId), results[0].Item2.Select(t => t.TokenId));
        Assert.Equal(Reference.GreedyIds, results[0].Item2.Select(t => t.TokenId));
    }

    [Fact]
    public async Task Seeded_requests_sample_the_same_tokens_and_logprobs_alone_as_among_others()
    {
        // The rows of a step are sampled on several threads at once; each must still draw from its
        // own row with its own generator, and report its own logprobs.
        var prompts = ReferenceCase.Load(Fixture).Select(c => c.PromptIds).ToArray();
        SamplingParameters Seeded(int i) =>
            new() { Temperature = 0.9, TopP = 0.95, MaxTokens = 8 + i % 5, IgnoreEos = true, Seed = 100 + i, Logprobs = 2 };
        var alone = new List<List<GeneratedToken>>();
        for (int i = 0; i < 6; i++)
        {
            alone.Add((await RunAsync(Seeded(i), prompts[i % prompts.Length], id: $"alone-{i}")).Tokens);
        }

        var together = await Task.WhenAll(Enumerable.Range(0, 24).Select(i => RunAsync(Seeded(i % 6), prompts[i % 6 % prompts.Length], id: $"together-{i}")));

        for (int i = 0; i < together.Length; i++)
        {
            List<GeneratedToken> expected = alone[i % 6], actual = together[i].Item2;
            Assert.Equal(expected.Select(t => t.TokenId), actual.Select(t => t.TokenId));
            Assert.Equal(expected.Select(t => t.Logprob), actual.Select(t => t.Logprob), (a, b) => Math.Abs((a ?? 0) - (b ?? 0)) < 1e-3);
            Assert.Equal(expected.Select(t => t.TopLogprobs!.Count), actual.Select(t => t.TopLogprobs!.Count));
        }
    }

    [Fact]
    public async Task A_prompt_that_fills_the_context_is_computed_in_chunks_with_the_same_result()
    {
        await using var chunked = EngineFactory.Start(Fixture, scheduler: new SchedulerOptions { MaxNumBatchedTokens = 7 });
        var prompt = Enumerable.Repeat(Reference.PromptIds, 20).SelectMany(p => p).Take(100).ToArray();
        var whole = await RunAsync(Greedy(8), prompt, id: "whole");
        var tokens = new List<int>();
        await foreach (GenerationEvent generated in chunked.GenerateAsync(new EngineSubmission("chunked", prompt, Greedy(8))))
        {
            tokens.AddRange(generated.Tokens.Select(t => t.TokenId));
        }
        Assert.Equal(whole.Tokens.Select(t => t.TokenId), tokens);
    }

    [Fact]
    public async Task A_prompt_served_from_the_prefix_cache_gives_the_same_tokens_and_logprobs()
    {
        var prompt = Enumerable.Repeat(Reference.PromptIds, 20).SelectMany(p => p).Take(100).ToArray();
        var sampling = Greedy(10) with { Logprobs = 3 };
        var cold = await RunAsync(sampling, prompt, id: "cold");
        var warm = await RunAsync(sampling, prompt, id: "warm");

        Assert.Equal(0, cold.Final.CachedPromptTokenCount);
        Assert.Equal(96, warm.Final.CachedPromptTokenCount);     // 6 full blocks of 16; the last 4 tokens are computed
        Assert.Equal(cold.Tokens.Select(t => t.TokenId), warm.Tokens.Select(t => t.TokenId));
        for (int i = 0; i < cold.Tokens.Count; i++)
        {
            Assert.Equal(cold.Tokens[i].Logprob!.Value, warm.Tokens[i].Logprob!.Value, 1e-4);
        }
    }

    [Fact]
    public async Task A_request_sent_after_the_engine_stopped_is_answered_as_aborted_not_left_waiting()
    {
        EngineClient stopped = EngineFactory.Start(Fixture);
        await stopped.Ready;
        await stopped.DisposeAsync();

        var events = new List<GenerationEvent>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (GenerationEvent generated in stopped.GenerateAsync(new EngineSubmission("late", Reference.PromptIds, Greedy(4)), timeout.Token))
        {
            events.Add(generated);
        }
        Assert.Equal(FinishReason.Aborted, Assert.Single(events).FinishReason);
    }
}
