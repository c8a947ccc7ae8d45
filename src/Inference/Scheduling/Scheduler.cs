using LlmServer.Inference.KvCache;

namespace LlmServer.Inference.Scheduling;

/// <summary>
/// Decides, every step, which requests run and how many tokens each gets. Running requests go
/// first, in admission order, so decodes are never starved by new prompts; new requests then fill the
/// rest of the token budget, their prompts split into chunks as needed. When the cache runs out
/// of blocks, the newest running request is preempted: its blocks are freed and it is recomputed
/// later. No tensors here: this is counts and ids only.
/// </summary>
public sealed class Scheduler
{
    private readonly SchedulerOptions _options;
    private readonly KvCacheManager _cache;
    private readonly LinkedList<Request> _waiting = new();
    private readonly List<Request> _running = [];

    public Scheduler(SchedulerOptions options, KvCacheManager cache)
    {
        _options = options;
        _cache = cache;
    }

    public int WaitingCount => _waiting.Count;
    public int RunningCount => _running.Count;
    public bool HasWork => _waiting.Count > 0 || _running.Count > 0;
    public KvCacheManager Cache => _cache;

    /// <summary>Requests preempted so far, each time counted.</summary>
    public long NumPreemptions { get; private set; }

    /// <summary>Prompt tokens computed so far (prefix-cache hits excluded, recomputation after preemption included).</summary>
    public long NumComputedPromptTokens { get; private set; }

    public void Add(Request request)
    {
        if (request.MaxTotalTokens > _cache.Capacity)
        {
            throw new ArgumentException(
                $"request {request.RequestId} may need {request.MaxTotalTokens} tokens of KV cache but the cache holds {_cache.Capacity}");
        }
        request.Status = RequestStatus.Waiting;
        _waiting.AddLast(request);
    }

    public SchedulerOutput Schedule()
    {
        int budget = _options.MaxNumBatchedTokens;
        var scheduled = new List<ScheduledRequest>();
        var preempted = new List<Request>();

        // In admission order; a request preempted below leaves this list, so iterate by index.
        for (int i = 0; i < _running.Count && budget > 0; i++)
        {
            Request request = _running[i];
            int tokens = Math.Min(request.NumTokens - request.NumComputedTokens, budget);
            if (tokens <= 0)
            {
                continue;
            }
            bool fits = true;
            while (!_cache.TryAllocateSlots(request, tokens))
            {
                Request victim = _running[^1];
                Preempt(victim);
                preempted.Add(victim);
                if (victim == request)
                {
                    fits = false;
                    break;
                }
            }
            if (fits)
            {
                scheduled.Add(new ScheduledRequest(request, tokens));
                budget -= tokens;
            }
        }

        // Nothing new starts while anyone is being pushed out: that would just thrash.
        while (preempted.Count == 0 && budget > 0 && _waiting.Count > 0 && _running.Count < _options.MaxNumSeqs)
        {
            Request request = _waiting.First!.Value;
            // Prompt logprobs need logits at every prompt position, which a cache hit would skip (as in vLLM).
            IReadOnlyList<int> cachedPrefix = request.Sampling.PromptLogprobs is null ? _cache.FindCachedPrefix(request) : [];
            int cachedTokens = cachedPrefix.Count * _cache.BlockSize;
            int tokens = Math.Min(request.NumTokens - cachedTokens, budget);
            if (!_cache.TryAllocateSlots(request, tokens, cachedPrefix))
            {
                break;
            }
            _cache.RecordLookup(request, cachedTokens);
            request.NumCachedTokens = Math.Min(cachedTokens, request.PromptLength);
            _waiting.RemoveFirst();
            request.Status = RequestStatus.Running;
            _running.Add(request);
            scheduled.Add(new ScheduledRequest(request, tokens));
            budget -= tokens;
        }
        NumPreemptions += preempted.Count;
        return new SchedulerOutput(scheduled, preempted);
    }

    /// <summary>Marks the scheduled tokens as computed and publishes newly full blocks; call after the forward pass ran.</summary>
    public void CommitStep(SchedulerOutput output)
    {
        NumComputedPromptTokens += output.NumPromptTokens;
        foreach (ScheduledRequest item in output.Scheduled)
        {
            item.Request.NumComputedTokens += item.NumScheduledTokens;
            _cache.CacheFullBlocks(item.Request);
        }
    }

    /// <summary>Removes a request wherever it is and frees its blocks at once.</summary>
    public bool Finish(Request request)
    {
        bool removed = _running.Remove(request) || _waiting.Remove(request);
        _cache.Free(request);
        request.Status = RequestStatus.Finished;
        return removed;
    }

    private void Preempt(Request request)
    {
        _running.Remove(request);
        _cache.Free(request);
        request.NumComputedTokens = 0;
        request.Status = RequestStatus.Preempted;
        // Back to the front: it was admitted before everything still waiting.
        _waiting.AddFirst(request);
    }
}
