using System.Numerics;
using System.Numerics.Tensors;
using LlmServer.Inference.Runtime;

namespace LlmServer.Inference.Sampling;

/// <summary>A row of logits no token can be drawn from (NaN from an overflow, say).</summary>
public sealed class SamplingException(string message) : Exception(message);

/// <summary>
/// Picks the next token of one request from its row of logits, with that request's own parameters.
/// Runs on plain arrays after one copy of the step's logits off the device: each row costs a few
/// vectorised passes over the vocabulary, needs no sort, and never depends on the other rows of
/// the batch, so a request samples the same tokens alone or among others.
/// </summary>
public sealed class Sampler
{
    private float[] _weights = [];
    private int[] _candidates = [];
    private double[] _chunkSums = [];

    /// <param name="headLogits">The request's row of raw logits: one per row of the model's LM head.</param>
    /// <param name="tokenCount">
    /// The tokenizer's vocabulary: only ids below it are sampled or reported. A checkpoint may pad
    /// its head past them (nanoGPT to 50304 rows, Qwen to 151936); those rows mean no token, but
    /// they are part of the model's distribution, so they still count in the logprobs' normalizer,
    /// as in transformers and vLLM.
    /// </param>
    /// <param name="request">Supplies the parameters and the output so far (for penalties and min_tokens).</param>
    /// <param name="random">The request's own generator; unused for greedy rows.</param>
    /// <param name="suppressedTokens">Tokens that may not be picked now (end-of-text before min_tokens).</param>
    /// <param name="allowedTokens">
    /// A bitmask over the vocabulary of the only tokens that may be picked (a grammar's), or empty for all. Like the
    /// other adjustments it changes what is picked, not the logprobs reported.
    /// </param>
    public GeneratedToken Sample(ReadOnlySpan<float> headLogits, int tokenCount, ISamplingRequest request, SeededRandom random,
        IReadOnlyCollection<int> suppressedTokens, int textOffset, ReadOnlySpan<ulong> allowedTokens = default)
    {
        ReadOnlySpan<float> logits = headLogits[..tokenCount];
        SamplingParameters sampling = request.Sampling;
        // IndexOfMax returns the first NaN if there is one, so this also checks the row.
        int argMax = TensorPrimitives.IndexOfMax(logits);
        if (float.IsNaN(logits[argMax]))
        {
            throw new SamplingException("the model produced NaN logits for this request");
        }

        bool unadjusted = sampling.LogitBias.Count == 0 && suppressedTokens.Count == 0
            && sampling.PresencePenalty == 0 && sampling.FrequencyPenalty == 0 && allowedTokens.IsEmpty;
        int chosen = (unadjusted, sampling.IsGreedy) switch
        {
            (true, true) => argMax,
            // Nothing moves a logit, so the weights come straight from them, with no copy to adjust first.
            (true, false) => Draw(logits, logits[argMax], Weights(logits.Length), sampling, random),
            _ => SampleAdjusted(logits, request, random, suppressedTokens, allowedTokens),
        };

        if (sampling.Logprobs is null)
        {
            return new GeneratedToken(chosen, null, null, textOffset);
        }
        // Logprobs describe the model's own distribution (before temperature, penalties and
        // cuts), which is what OpenAI's API reports.
        double logNormalizer = logits.Length == headLogits.Length
            ? LogSumExp(logits, logits[argMax])
            : LogSumExp(headLogits, TensorPrimitives.Max(headLogits));
        IReadOnlyList<TokenLogprob>? top = sampling.Logprobs > 0 ? TopLogprobs(logits, sampling.Logprobs.Value, logNormalizer) : null;
        return new GeneratedToken(chosen, FiniteLogprob(logits[chosen] - logNormalizer), top, textOffset);
    }

    /// <summary>
    /// How likely the model found a token it was given (a prompt token) at the position whose logits these are,
    /// normalized over the whole head as <see cref="Sample"/> does.
    /// </summary>
    /// <param name="topCount">Alternatives to report besides the token itself.</param>
    public PromptTokenLogprob PromptLogprob(ReadOnlySpan<float> headLogits, int tokenCount, int tokenId, int topCount)
    {
        ReadOnlySpan<float> logits = headLogits[..tokenCount];
        double logNormalizer = LogSumExp(headLogits, TensorPrimitives.Max(headLogits));
        float logit = headLogits[tokenId];
        // vLLM's rank: 1 + how many tokens the model found likelier.
        int rank = 1;
        foreach (float other in logits)
        {
            if (other > logit)
            {
                rank++;
            }
        }
        IReadOnlyList<TokenLogprob>? top = topCount > 0 ? TopLogprobs(logits, topCount, logNormalizer) : null;
        return new PromptTokenLogprob(tokenId, FiniteLogprob(logit - logNormalizer), rank, top);
    }

    private int SampleAdjusted(ReadOnlySpan<float> logits, ISamplingRequest request, SeededRandom random, IReadOnlyCollection<int> suppressedTokens,
        ReadOnlySpan<ulong> allowedTokens)
    {
        SamplingParameters sampling = request.Sampling;
        Span<float> adjusted = Weights(logits.Length);
        logits.CopyTo(adjusted);
        ApplyBiasAndPenalties(adjusted, request);
        foreach (int token in suppressedTokens)
        {
            if ((uint)token < (uint)adjusted.Length)
            {
                adjusted[token] = float.NegativeInfinity;
            }
        }
        if (!allowedTokens.IsEmpty)
        {
            ExcludeDisallowed(adjusted, allowedTokens);
        }
        int best = TensorPrimitives.IndexOfMax(adjusted);
        return sampling.IsGreedy ? best : Draw(adjusted, adjusted[best], adjusted, sampling, random);
    }

    /// <summary>The scratch row for a vocabulary of <paramref name="length"/>: adjusted logits, then weights.</summary>
    private Span<float> Weights(int length)
    {
        EnsureCapacity(length);
        return _weights.AsSpan(0, length);
    }

    private static void ExcludeDisallowed(Span<float> adjusted, ReadOnlySpan<ulong> allowedTokens)
    {
        // Inside a JSON string nearly every token is allowed, elsewhere nearly none: each word of the mask is
        // handled by whichever of its set or clear bits are fewer.
        Span<float> kept = stackalloc float[64];
        for (int word = 0; word * 64 < adjusted.Length; word++)
        {
            ulong allowed = allowedTokens[word];
            int start = word * 64;
            Span<float> slice = adjusted.Slice(start, Math.Min(64, adjusted.Length - start));
            if (allowed == ulong.MaxValue)
            {
                continue;
            }

            if (BitOperations.PopCount(allowed) >= 32)
            {
                for (ulong excluded = ~allowed; excluded != 0; excluded &= excluded - 1)
                {
                    int bit = BitOperations.TrailingZeroCount(excluded);
                    if (bit < slice.Length)
                    {
                        slice[bit] = float.NegativeInfinity;
                    }
                }

                continue;
            }

            for (ulong bits = allowed; bits != 0; bits &= bits - 1)
            {
                int bit = BitOperations.TrailingZeroCount(bits);
                kept[bit] = bit < slice.Length ? slice[bit] : 0;
            }

            slice.Fill(float.NegativeInfinity);
            for (ulong bits = allowed; bits != 0; bits &= bits - 1)
            {
                int bit = BitOperations.TrailingZeroCount(bits);
                if (bit < slice.Length)
                {
                    slice[bit] = kept[bit];
                }
            }
        }
    }

    private static void ApplyBiasAndPenalties(Span<float> adjusted, ISamplingRequest request)
    {
        SamplingParameters sampling = request.Sampling;
        foreach ((int token, double bias) in sampling.LogitBias)
        {
            if ((uint)token < (uint)adjusted.Length)
            {
                adjusted[token] += (float)bias;
            }
        }
        if (sampling.PresencePenalty == 0 && sampling.FrequencyPenalty == 0)
        {
            return;
        }
        // OpenAI's definition: logit -= count * frequency_penalty + (count > 0) * presence_penalty,
        // counted over the tokens generated so far.
        foreach ((int token, int count) in request.OutputTokenCounts)
        {
            if ((uint)token < (uint)adjusted.Length)
            {
                adjusted[token] -= (float)(count * sampling.FrequencyPenalty + sampling.PresencePenalty);
            }
        }
    }

    /// <summary>
    /// Turns the (adjusted) logits into <paramref name="weights"/> at the request's temperature, applies top-k
    /// and top-p, and draws; <paramref name="weights"/> may be the logits' own span.
    /// </summary>
    private int Draw(ReadOnlySpan<float> adjusted, float max, Span<float> weights, SamplingParameters sampling, SeededRandom random)
    {
        if (float.IsNegativeInfinity(max))
        {
            throw new SamplingException("every token is excluded (logit_bias, penalties or the required output format left nothing to sample)");
        }
        if (float.IsPositiveInfinity(max))
        {
            // An overflowed logit dominates any distribution; exp(inf - inf) would be NaN.
            return TensorPrimitives.IndexOfMax(adjusted);
        }
        // w = exp((logit - max) / T), in one vectorised pass.
        FastExponential.ExpOfShiftedAndScaled(adjusted, max, (float)(1.0 / sampling.Temperature), weights);

        bool cut = (sampling.TopK > 0 && sampling.TopK < weights.Length) || sampling.TopP < 1.0;
        return cut ? DrawAfterCuts(weights, sampling, random) : DrawFromAll(weights, random);
    }

    /// <summary>Tokens summed as one vectorised run before the draw looks inside; a row is a few dozen of them.</summary>
    private const int WeightChunk = 1024;

    /// <summary>
    /// Draws token i with probability w[i] / Σw over the whole vocabulary. The walk to the target goes
    /// chunk by chunk on sums taken once, then token by token inside one chunk, so a row costs a few
    /// vectorised passes rather than two scalar ones.
    /// </summary>
    private int DrawFromAll(ReadOnlySpan<float> weights, SeededRandom random)
    {
        int chunks = (weights.Length + WeightChunk - 1) / WeightChunk;
        Span<double> chunkSums = _chunkSums.AsSpan(0, chunks);
        double total = 0;
        for (int c = 0; c < chunks; c++)
        {
            chunkSums[c] = TensorPrimitives.Sum(weights.Slice(c * WeightChunk, Math.Min(WeightChunk, weights.Length - c * WeightChunk)));
            total += chunkSums[c];
        }
        if (!(total > 0))
        {
            throw new SamplingException("no token has a positive weight at this temperature");
        }
        double target = random.NextDouble() * total;
        double cumulative = 0;
        int first = 0;
        for (; first < chunks - 1 && cumulative + chunkSums[first] <= target; first++)
        {
            cumulative += chunkSums[first];
        }
        // A chunk's vectorised sum and its token-by-token one may differ in the last bits; the walk
        // simply goes on into the next chunk if the target lies past this one's end.
        for (int i = first * WeightChunk; i < weights.Length; i++)
        {
            cumulative += weights[i];
            if (cumulative > target)
            {
                return i;
            }
        }
        return weights.LastIndexOfAnyExcept(0f);
    }

    /// <summary>Draws among the tokens top-k and top-p keep, in proportion to their weights.</summary>
    private int DrawAfterCuts(Span<float> adjusted, SamplingParameters sampling, SeededRandom random)
    {
        int count = 0;
        Span<int> candidates = _candidates.AsSpan(0, adjusted.Length);
        for (int i = 0; i < adjusted.Length; i++)
        {
            if (adjusted[i] > 0)
            {
                candidates[count++] = i;
            }
        }
        if (count == 0)
        {
            throw new SamplingException("no token has a positive weight at this temperature");
        }
        Span<int> kept = candidates[..count];
        if (sampling.TopK > 0 && sampling.TopK < kept.Length)
        {
            kept = TopSelection.KeepLargest(kept, adjusted, sampling.TopK);
        }
        if (sampling.TopP < 1.0)
        {
            kept = TopSelection.KeepNucleus(kept, adjusted, sampling.TopP);
        }

        double total = 0;
        foreach (int token in kept)
        {
            total += adjusted[token];
        }
        double target = random.NextDouble() * total;
        double cumulative = 0;
        foreach (int token in kept)
        {
            cumulative += adjusted[token];
            if (cumulative > target)
            {
                return token;
            }
        }
        return kept[^1];
    }

    private double LogSumExp(ReadOnlySpan<float> logits, float max)
    {
        EnsureCapacity(logits.Length);
        Span<float> shifted = _weights.AsSpan(0, logits.Length);
        TensorPrimitives.Subtract(logits, max, shifted);
        TensorPrimitives.Exp(shifted, shifted);
        return max + Math.Log(TensorPrimitives.Sum<float>(shifted));
    }

    /// <summary>The <paramref name="count"/> most likely tokens, most likely first (ties: lower id first).</summary>
    private static IReadOnlyList<TokenLogprob> TopLogprobs(ReadOnlySpan<float> logits, int count, double logNormalizer)
    {
        count = Math.Min(count, logits.Length);
        var best = new List<int>(count + 1);
        for (int i = 0; i < logits.Length; i++)
        {
            if (best.Count == count && logits[i] <= logits[best[^1]])
            {
                continue;
            }
            int at = best.Count;
            while (at > 0 && logits[i] > logits[best[at - 1]])
            {
                at--;
            }
            best.Insert(at, i);
            if (best.Count > count)
            {
                best.RemoveAt(best.Count - 1);
            }
        }
        var result = new TokenLogprob[best.Count];
        for (int i = 0; i < best.Count; i++)
        {
            result[i] = new TokenLogprob(best[i], FiniteLogprob(logits[best[i]] - logNormalizer));
        }
        return result;
    }

    /// <summary>JSON has no -Infinity; like vLLM, an impossible token reports -9999.</summary>
    private static float FiniteLogprob(double logprob) => double.IsFinite(logprob) ? (float)logprob : -9999f;

    private void EnsureCapacity(int vocabulary)
    {
        if (_weights.Length < vocabulary)
        {
            _weights = new float[vocabulary];
            _candidates = new int[vocabulary];
            _chunkSums = new double[(vocabulary + WeightChunk - 1) / WeightChunk];
        }
    }
}
