namespace LlmServer.Inference.Engine;

/// <summary>A row of logits no token can be drawn from (NaN from an overflow, say).</summary>
public sealed class SamplingException(string message) : Exception(message);

/// <summary>
/// Picks the next token of one request from its row of logits, with that request's own parameters.
/// Runs on plain arrays after one copy of the step's logits off the device: each row costs O(V),
/// needs no sort of the vocabulary, and never depends on the other rows of the batch, so a request
/// samples the same tokens alone or among others.
/// </summary>
public sealed class Sampler
{
    private double[] _weights = [];
    private int[] _candidates = [];

    /// <param name="logits">The request's row of raw logits (V).</param>
    /// <param name="request">Supplies the parameters and the output so far (for penalties and min_tokens).</param>
    /// <param name="random">The request's own generator; unused for greedy rows.</param>
    /// <param name="suppressedTokens">Tokens that may not be picked now (end-of-text before min_tokens).</param>
    public GeneratedToken Sample(ReadOnlySpan<float> logits, Request request, SeededRandom random,
        IReadOnlyCollection<int> suppressedTokens, int textOffset)
    {
        SamplingParameters sampling = request.Sampling;
        int vocabulary = logits.Length;
        if (ContainsNaN(logits))
        {
            throw new SamplingException("the model produced NaN logits for this request");
        }
        EnsureCapacity(vocabulary);
        Span<double> adjusted = _weights.AsSpan(0, vocabulary);
        for (int i = 0; i < vocabulary; i++)
        {
            adjusted[i] = logits[i];
        }
        ApplyBiasAndPenalties(adjusted, request);
        foreach (int token in suppressedTokens)
        {
            if ((uint)token < (uint)vocabulary)
            {
                adjusted[token] = double.NegativeInfinity;
            }
        }

        int chosen = sampling.IsGreedy ? ArgMax(adjusted) : Draw(adjusted, sampling, random);

        // Logprobs describe the model's own distribution (before temperature, penalties and
        // cuts), which is what OpenAI's API reports.
        double logNormalizer = LogSumExp(logits);
        float chosenLogprob = FiniteLogprob(logits[chosen] - logNormalizer);
        IReadOnlyList<TokenLogprob>? top = sampling.Logprobs is > 0 ? TopLogprobs(logits, sampling.Logprobs.Value, logNormalizer) : null;
        return new GeneratedToken(chosen, chosenLogprob, top, textOffset);
    }

    private static void ApplyBiasAndPenalties(Span<double> adjusted, Request request)
    {
        SamplingParameters sampling = request.Sampling;
        foreach ((int token, double bias) in sampling.LogitBias)
        {
            if ((uint)token < (uint)adjusted.Length)
            {
                adjusted[token] += bias;
            }
        }
        if (sampling.PresencePenalty == 0 && sampling.FrequencyPenalty == 0)
        {
            return;
        }
        // OpenAI's definition: logit -= count * frequency_penalty + (count > 0) * presence_penalty,
        // counted over the tokens generated so far.
        var counts = new Dictionary<int, int>();
        foreach (int token in request.OutputTokenIds)
        {
            counts[token] = counts.GetValueOrDefault(token) + 1;
        }
        foreach ((int token, int count) in counts)
        {
            if ((uint)token < (uint)adjusted.Length)
            {
                adjusted[token] -= count * sampling.FrequencyPenalty + sampling.PresencePenalty;
            }
        }
    }

    private int Draw(Span<double> adjusted, SamplingParameters sampling, SeededRandom random)
    {
        // Turn logits into unnormalised probabilities at the request's temperature.
        double max = double.NegativeInfinity;
        foreach (double value in adjusted)
        {
            max = Math.Max(max, value);
        }
        if (double.IsNegativeInfinity(max))
        {
            return ArgMax(adjusted);
        }
        int count = 0;
        Span<int> candidates = _candidates.AsSpan(0, adjusted.Length);
        for (int i = 0; i < adjusted.Length; i++)
        {
            double weight = Math.Exp((adjusted[i] - max) / sampling.Temperature);
            adjusted[i] = weight;
            if (weight > 0)
            {
                candidates[count++] = i;
            }
        }
        if (count == 0)
        {
            // Every weight underflowed at this temperature: the top token is the only sensible pick.
            return ArgMax(adjusted);
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

    private static int ArgMax(ReadOnlySpan<double> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best])
            {
                best = i;
            }
        }
        return best;
    }

    private static double LogSumExp(ReadOnlySpan<float> logits)
    {
        float max = float.NegativeInfinity;
        foreach (float value in logits)
        {
            max = Math.Max(max, value);
        }
        double sum = 0;
        foreach (float value in logits)
        {
            sum += Math.Exp(value - max);
        }
        return max + Math.Log(sum);
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

    private static bool ContainsNaN(ReadOnlySpan<float> values)
    {
        foreach (float value in values)
        {
            if (float.IsNaN(value))
            {
                return true;
            }
        }
        return false;
    }

    private void EnsureCapacity(int vocabulary)
    {
        if (_weights.Length < vocabulary)
        {
            _weights = new double[vocabulary];
            _candidates = new int[vocabulary];
        }
    }
}
