namespace LlmServer.Inference.Sampling;

/// <summary>
/// What the sampler reads of a request: how to sample, and what it generated so far (for the
/// penalties). The scheduler's request is one; the sampler needs nothing else of it.
/// </summary>
public interface ISamplingRequest
{
    SamplingParameters Sampling { get; }

    /// <summary>How often each token has been generated; kept only for requests with presence or frequency penalties.</summary>
    IReadOnlyDictionary<int, int> OutputTokenCounts { get; }
}
