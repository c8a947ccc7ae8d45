using System.Diagnostics;
using LlmServer.Inference.KvCache;
using LlmServer.Inference.Sampling;

namespace LlmServer.Inference.Scheduling;

public enum RequestStatus
{
    Waiting,
    Running,
    /// <summary>Gave its blocks to an older running request that needed room; waits to be recomputed.</summary>
    Preempted,
    Finished,
}

/// <summary>
/// The scheduler's view of one request: token ids and counts, no tensors. There is no prefill or
/// decode phase: the scheduler gives the request tokens until <see cref="NumComputedTokens"/>
/// catches up with <see cref="NumTokens"/>, then each step adds one sampled token.
/// </summary>
public sealed class Request : IKvCacheRequest, ISamplingRequest
{
    private readonly List<int> _tokenIds;

    public Request(string requestId, IReadOnlyList<int> promptTokenIds, SamplingParameters sampling, long arrivalOrder)
    {
        if (promptTokenIds.Count == 0)
        {
            throw new ArgumentException("a request needs at least one prompt token", nameof(promptTokenIds));
        }
        RequestId = requestId;
        Sampling = sampling;
        ArrivalOrder = arrivalOrder;
        PromptLength = promptTokenIds.Count;
        _tokenIds = new List<int>(promptTokenIds.Count + Math.Max(sampling.MaxTokens, 0));
        _tokenIds.AddRange(promptTokenIds);
    }

    public string RequestId { get; }
    public SamplingParameters Sampling { get; }
    public long ArrivalOrder { get; }

    /// <summary>The weights the request runs on; part of its prefix-cache identity, so blocks never cross models.</summary>
    public int WeightsId { get; init; }
    public RequestStatus Status { get; set; } = RequestStatus.Waiting;

    /// <summary>When the request reached each phase; arrival is when it was submitted, now unless given.</summary>
    public RequestTimings Timings { get; init; } = new(Stopwatch.GetTimestamp());

    public int PromptLength { get; }
    public IReadOnlyList<int> TokenIds => _tokenIds;
    public int NumTokens => _tokenIds.Count;
    public int NumOutputTokens => _tokenIds.Count - PromptLength;

    /// <summary>Tokens whose keys and values are in the cache.</summary>
    public int NumComputedTokens { get; set; }

    /// <summary>Prompt tokens found in the prefix cache when the request was (last) admitted.</summary>
    public int NumCachedTokens { get; set; }

    public PrefixCacheState PrefixCache { get; } = new();

    /// <summary>The most tokens this request can ever hold in the cache.</summary>
    public int MaxTotalTokens => PromptLength + Sampling.MaxTokens;

    public IEnumerable<int> OutputTokenIds => _tokenIds.Skip(PromptLength);

    /// <summary>
    /// How often each token has been generated, kept as tokens arrive for requests with presence
    /// or frequency penalties, so the sampler does not recount the whole output every step.
    /// </summary>
    public IReadOnlyDictionary<int, int> OutputTokenCounts => _outputTokenCounts;
    private readonly Dictionary<int, int> _outputTokenCounts = [];

    public void AppendOutputToken(int tokenId)
    {
        _tokenIds.Add(tokenId);
        if (Sampling.PresencePenalty != 0 || Sampling.FrequencyPenalty != 0)
        {
            _outputTokenCounts[tokenId] = _outputTokenCounts.GetValueOrDefault(tokenId) + 1;
        }
    }
}
