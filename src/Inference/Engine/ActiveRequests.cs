using System.Diagnostics;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The requests the engine has admitted and not yet answered in full. Admitting one binds it to its
/// weights and hands it to the scheduler; ending one takes it out of the scheduler (freeing its
/// blocks at once), closes its event stream with a final event that carries its timings, lets go
/// of its weights and records its metrics. Engine thread only.
/// </summary>
internal sealed class ActiveRequests(Scheduler scheduler, ModelRegistry registry, EngineMetrics metrics, int vocabularySize)
{
    private readonly Dictionary<string, ActiveRequest> _byId = new(StringComparer.Ordinal);
    private long _arrivals;

    public ActiveRequest this[string requestId] => _byId[requestId];

    public long AbortedCount { get; private set; }
    public long GeneratedTokenCount { get; private set; }

    /// <summary>Starts a request, or answers it at once with why it cannot run.</summary>
    public void Admit(EngineCommand.Add add)
    {
        try
        {
            if (_byId.ContainsKey(add.RequestId))
            {
                throw new ArgumentException($"request id {add.RequestId} is already in use");
            }
            if (add.PromptTokenIds.Any(id => (uint)id >= (uint)vocabularySize))
            {
                throw new ArgumentException($"the prompt holds a token id outside the model's vocabulary of {vocabularySize}");
            }
            int weightsId = add.WeightsId ?? registry.Catalog.Resolve(null)?.WeightsId
                ?? throw new ArgumentException("no model answers requests that name none");
            // Bound here for the request's whole life: a swap after this point does not touch it.
            LoadedWeights weights = registry.Acquire(weightsId)
                ?? throw new ArgumentException("the model was unloaded before the request started; send it again");
            try
            {
                var request = new Request(add.RequestId, add.PromptTokenIds, add.Sampling, _arrivals++)
                {
                    WeightsId = weightsId,
                    Timings = new RequestTimings(add.ArrivalTimestamp),
                };
                var output = new RequestOutput(request, weights.Served.Tokenizer, Random.Shared.NextInt64());
                scheduler.Add(request);
                _byId[add.RequestId] = new ActiveRequest(request, output, add.Events, weights);
            }
            catch
            {
                registry.Release(weights);
                throw;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            add.Answer(FinishReason.Error, e.Message);
        }
    }

    /// <summary>Marks the requests that run for the first time in <paramref name="output"/>: their time in the queue ends.</summary>
    public void MarkScheduled(SchedulerOutput output)
    {
        long now = Stopwatch.GetTimestamp();
        foreach (ScheduledRequest item in output.Scheduled)
        {
            if (item.Request.Timings.MarkScheduled(now))
            {
                metrics.RecordQueueTime(item.Request.Timings);
            }
        }
    }

    /// <summary>Records what a step produced for the request and sends it down its stream, ending the request if it was the last.</summary>
    public void Update(ActiveRequest active, GenerationEvent generated)
    {
        // An event carries tokens only when one was sampled this step; a failed row carries none.
        if (generated.Tokens.Count > 0)
        {
            GeneratedTokenCount += generated.Tokens.Count;
            active.Request.Timings.MarkToken(Stopwatch.GetTimestamp());
            metrics.RecordToken(active.Request.Timings);
        }
        if (generated.IsFinal)
        {
            End(active, generated);
        }
        else
        {
            active.Events.TryWrite(generated);
        }
    }

    public void Abort(string requestId)
    {
        if (_byId.TryGetValue(requestId, out ActiveRequest? active))
        {
            End(active, active.Output.Finish(FinishReason.Aborted));
            AbortedCount++;
        }
    }

    /// <summary>Fails those of <paramref name="requests"/> that are still running.</summary>
    public void Fail(IEnumerable<Request> requests, string message)
    {
        foreach (Request request in requests.ToList())
        {
            if (_byId.TryGetValue(request.RequestId, out ActiveRequest? active))
            {
                End(active, active.Output.Finish(FinishReason.Error, message));
            }
        }
    }

    public void FailAll(string message) => Fail(_byId.Values.Select(active => active.Request), message);

    /// <summary>Answers every request at shutdown, leaving the scheduler alone: it may be what failed.</summary>
    public void AbortAllAtShutdown(string message)
    {
        foreach (ActiveRequest active in _byId.Values.ToList())
        {
            End(active, active.Output.Finish(FinishReason.Aborted, message), inScheduler: false);
        }
    }

    private void End(ActiveRequest active, GenerationEvent final, bool inScheduler = true)
    {
        if (inScheduler)
        {
            scheduler.Finish(active.Request);
        }
        RequestTimings timings = active.Request.Timings;
        timings.MarkFinished(Stopwatch.GetTimestamp());
        active.Events.TryWrite(final with { Timings = timings });
        active.Events.TryComplete();
        _byId.Remove(active.Request.RequestId);
        registry.Release(active.Weights);
        metrics.RecordFinished(final.FinishReason ?? FinishReason.Error, timings);
    }
}
