using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Tests.Sampling;

/// <summary>The sampler on hand-made logits, where the right answer is known.</summary>
public class SamplerTests
{
    // Probabilities 0.5, 0.25, 0.125, 0.125 at temperature 1.
    private static readonly float[] Logits = [MathF.Log(4), MathF.Log(2), 0, 0];

    private static Request RequestWith(SamplingParameters sampling, params int[] output)
    {
        var request = new Request("r", [1, 2, 3], sampling, 0);
        foreach (int token in output)
        {
            request.AppendOutputToken(token);
        }
        return request;
    }

    private static Dictionary<int, int> Histogram(SamplingParameters sampling, int draws = 4000)
    {
        var sampler = new Sampler();
        var random = new SeededRandom(17);
        var counts = new Dictionary<int, int>();
        Request request = RequestWith(sampling);
        for (int i = 0; i < draws; i++)
        {
            int token = sampler.Sample(Logits, Logits.Length, request, random, [], 0).TokenId;
            counts[token] = counts.GetValueOrDefault(token) + 1;
        }
        return counts;
    }

    [Theory]
    [InlineData(new[] { 5, 70, 199 })]          // a few allowed: sparse words
    [InlineData(new[] { 0, 1, 2, 63, 64, 150 })] // word boundaries
    public void An_allowed_token_mask_is_the_only_source_of_picks_and_leaves_logprobs_alone(int[] allowedIds)
    {
        // 200 tokens: the mask's words are mostly clear, or (below) mostly set, the two ways they are applied.
        float[] logits = [.. Enumerable.Range(0, 200).Select(i => (float)Math.Sin(i))];
        foreach (bool inverted in new[] { false, true })
        {
            var mask = new ulong[4];
            var allowed = new HashSet<int>(inverted ? Enumerable.Range(0, 200).Except(allowedIds) : allowedIds);
            foreach (int id in allowed)
            {
                mask[id >> 6] |= 1UL << (id & 63);
            }

            var sampler = new Sampler();
            var random = new SeededRandom(3);
            Request request = RequestWith(new SamplingParameters { Temperature = 1, Logprobs = 0 });
            var seen = new HashSet<int>();
            for (int i = 0; i < 2000; i++)
            {
                GeneratedToken token = sampler.Sample(logits, logits.Length, request, random, [], 0, mask);
                Assert.Contains(token.TokenId, allowed);
                seen.Add(token.TokenId);
                double normalizer = Math.Log(logits.Sum(l => Math.Exp(l)));
                Assert.Equal(logits[token.TokenId] - normalizer, token.Logprob!.Value, 4);
            }

            Assert.True(seen.Count >= Math.Min(allowed.Count, 3));
            int greedy = sampler.Sample(logits, logits.Length, RequestWith(new SamplingParameters { Temperature = 0 }), random, [], 0, mask).TokenId;
            Assert.Equal(allowed.MaxBy(id => logits[id]), greedy);
        }
    }

    [Fact]
    public void Temperature_one_draws_in_proportion_to_the_probabilities()
    {
        Dictionary<int, int> counts = Histogram(new SamplingParameters { Temperature = 1 });
        Assert.InRange(counts[0] / 4000.0, 0.47, 0.53);
        Assert.InRange(counts[1] / 4000.0, 0.22, 0.28);
        Assert.InRange(counts[2] / 4000.0, 0.10, 0.15);
        Assert.InRange(counts[3] / 4000.0, 0.10, 0.15);
    }

    [Fact]
    public void A_vocabulary_sized_row_draws_in_proportion_across_its_whole_length()
    {
        // 50,257 tokens as GPT-2's head: the draw walks chunk sums, then tokens; the likely tokens sit
        // at the ends of the row and at chunk edges, the excluded ones (weight 0) between them.
        const int vocabulary = 50_257;
        var logits = new float[vocabulary];
        Array.Fill(logits, float.NegativeInfinity);
        (int Token, double Probability)[] expected = [(0, 0.1), (1023, 0.2), (1024, 0.3), (vocabulary - 1, 0.4)];
        foreach ((int token, double probability) in expected)
        {
            logits[token] = (float)Math.Log(probability);
        }
        var sampler = new Sampler();
        var random = new SeededRandom(5);
        Request request = RequestWith(new SamplingParameters { Temperature = 1 });
        const int draws = 20_000;
        var counts = new Dictionary<int, int>();
        for (int i = 0; i < draws; i++)
        {
            int token = sampler.Sample(logits, vocabulary, request, random, [], 0).TokenId;
            counts[token] = counts.GetValueOrDefault(token) + 1;
        }
        Assert.Equal(expected.Select(e => e.Token), counts.Keys.Order());
        foreach ((int token, double probability) in expected)
        {
            // Five standard deviations of a binomial proportion at 20,000 draws is at most 0.018.
            Assert.InRange(counts[token] / (double)draws, probability - 0.018, probability + 0.018);
        }
    }

    [Fact]
    public void Top_p_keeps_the_smallest_set_that_reaches_p()
    {
        // 0.5 alone is short of 0.6, so the nucleus is {0, 1}, renormalised to 2/3 and 1/3.
        Dictionary<int, int> counts = Histogram(new SamplingParameters { Temperature = 1, TopP = 0.6 });
        Assert.Equal([0, 1], counts.Keys.Order());
        Assert.InRange(counts[0] / 4000.0, 0.63, 0.70);
    }

    [Fact]
    public void Top_k_keeps_the_k_most_likely()
    {
        Assert.Equal([0, 1], Histogram(new SamplingParameters { Temperature = 1, TopK = 2 }).Keys.Order());
    }

    [Fact]
    public void Low_temperature_sharpens_towards_the_top_token()
    {
        Dictionary<int, int> counts = Histogram(new SamplingParameters { Temperature = 0.1 });
        Assert.True(counts[0] > 3990);
    }

    [Fact]
    public void Logit_bias_and_penalties_change_the_greedy_choice()
    {
        var sampler = new Sampler();
        var random = new SeededRandom(1);
        Assert.Equal(3, sampler.Sample(Logits, Logits.Length, RequestWith(new SamplingParameters { Temperature = 0, LogitBias = new Dictionary<int, double> { [3] = 5 } }), random, [], 0).TokenId);
        // Token 0 already said twice: 1.386 - 2 * 0.5 - 0.5 < 0.693, so token 1 wins.
        Request repeated = RequestWith(new SamplingParameters { Temperature = 0, FrequencyPenalty = 0.5, PresencePenalty = 0.5 }, 0, 0);
        Assert.Equal(1, sampler.Sample(Logits, Logits.Length, repeated, random, [], 0).TokenId);
        Assert.Equal(1, sampler.Sample(Logits, Logits.Length, RequestWith(new SamplingParameters { Temperature = 0 }), random, [0], 0).TokenId);
    }

    [Fact]
    public void Logprobs_are_the_models_own_distribution_whatever_the_temperature()
    {
        var sampler = new Sampler();
        GeneratedToken token = sampler.Sample(Logits, Logits.Length, RequestWith(new SamplingParameters { Temperature = 0.3, Logprobs = 2, Seed = 3 }), new SeededRandom(3), [], 0);
        Assert.Equal(MathF.Log(0.5f), token.TopLogprobs![0].Logprob, 5);
        Assert.Equal(MathF.Log(0.25f), token.TopLogprobs[1].Logprob, 5);
        Assert.Equal([0, 1], token.TopLogprobs.Select(t => t.TokenId));
        Assert.Null(sampler.Sample(Logits, Logits.Length, RequestWith(new SamplingParameters { Temperature = 0 }), new SeededRandom(3), [], 0).Logprob);
    }

    [Fact]
    public void Head_rows_past_the_tokenizer_are_never_picked_but_count_in_the_logprobs()
    {
        var sampler = new Sampler();
        // Four tokens with probabilities 1/2, 1/4, 1/8, 1/8 of a head padded by one row as likely as them all.
        float[] padded = [MathF.Log(4), MathF.Log(2), 0, 0, MathF.Log(8)];
        GeneratedToken token = sampler.Sample(padded, 4, RequestWith(new SamplingParameters { Temperature = 0, Logprobs = 4 }), new SeededRandom(3), [], 0);
        Assert.Equal(0, token.TokenId);
        Assert.Equal(MathF.Log(0.25f), token.Logprob!.Value, 5);
        Assert.Equal([0, 1, 2, 3], token.TopLogprobs!.Select(t => t.TokenId).Order());
        var random = new SeededRandom(2);
        var hot = RequestWith(new SamplingParameters { Temperature = 1.5 });
        Assert.All(Enumerable.Range(0, 200), _ => Assert.InRange(sampler.Sample(padded, 4, hot, random, [], 0).TokenId, 0, 3));
    }

    [Fact]
    public void A_temperature_too_small_to_divide_by_is_greedy()
    {
        var sampler = new Sampler();
        Assert.Equal(0, sampler.Sample(Logits, Logits.Length, RequestWith(new SamplingParameters { Temperature = 1e-39, Seed = 1 }), new SeededRandom(1), [], 0).TokenId);
        Assert.Equal(1, sampler.Sample([1, float.PositiveInfinity, 2], 3, RequestWith(new SamplingParameters { Temperature = 0.7 }), new SeededRandom(1), [], 0).TokenId);
    }

    [Fact]
    public void Nan_logits_are_refused_rather_than_sampled()
    {
        var sampler = new Sampler();
        Assert.Throws<SamplingException>(() => sampler.Sample([0, float.NaN, 1], 3, RequestWith(new SamplingParameters()), new SeededRandom(1), [], 0));
    }
}
