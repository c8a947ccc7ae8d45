using LlmServer.Inference.Quantization;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The engine's step: schedule, execute, sample, update; and between steps, admitting and aborting
/// requests. Used by the engine thread alone (<see cref="EngineLoop"/>): TorchSharp's dispose scopes
/// and inference mode are per thread, and a single owner of the scheduler, the block tables and the
/// cache needs no locks. Only the runner touches tensors.
/// </summary>
internal sealed class EngineCore : IDisposable
{
    private readonly Scheduler _scheduler;
    private readonly ModelRunner _runner;
    private readonly LoadedEngine _loaded;
    private readonly ActiveRequests _requests;
    private volatile EngineStatistics _statistics;

    public EngineCore(LoadedEngine loaded, EngineMetrics metrics)
    {
        (_loaded, _scheduler, _runner) = (loaded, loaded.Scheduler, loaded.Runner);
        _requests = new ActiveRequests(_scheduler, loaded.Registry, metrics, _runner.VocabularySize);
        _statistics = EngineStatistics.Of(_scheduler, _requests);
    }

    public ModelRegistry Registry => _loaded.Registry;
    public bool HasWork => _scheduler.HasWork;
    /// <summary>Published after each change; safe to read from any thread.</summary>
    public EngineStatistics Statistics => _statistics;

    public void Add(EngineCommand.Add add) => _requests.Admit(add);

    public void Abort(string requestId)
    {
        _requests.Abort(requestId);
        PublishStatistics();
    }

    public void Step()
    {
        SchedulerOutput output = _scheduler.Schedule();
        _requests.MarkScheduled(output);
        try
        {
            StepLogits step = _runner.Execute(output);
            _scheduler.CommitStep(output);
            int width = _runner.VocabularySize;
            foreach (PromptLogitRows rows in step.Prompt)
            {
                ActiveRequest active = _requests[rows.Request.RequestId];
                active.AddPromptLogprobs(RowSampler.Current, rows, step.PromptLogits.Span.Slice(rows.FirstRow * width, rows.Count * width), width);
            }
            IReadOnlyList<Request> sampling = step.Sampling;
            var sampled = new ActiveRequest[sampling.Count];
            for (int row = 0; row < sampled.Length; row++)
            {
                sampled[row] = _requests[sampling[row].RequestId];
            }
            // Each row's choice reads its own logits and touches its own request only, so the rows
            // split between the kernel threads; what the choices set off runs here, in row order.
            var chosen = new ChosenToken[sampled.Length];
            ReadOnlyMemory<float> logits = step.Logits;
            KernelThreads.ForRanges(sampled.Length, 1, (start, end) =>
            {
                Sampler sampler = RowSampler.Current;
                for (int row = start; row < end; row++)
                {
                    chosen[row] = sampled[row].Choose(sampler, logits.Span.Slice(row * width, width), sampled[row].Weights.Served.Tokenizer.VocabSize);
                }
            });
            for (int row = 0; row < sampled.Length; row++)
            {
                _requests.Update(sampled[row], sampled[row].Emit(chosen[row]));
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failed step fails the requests in it, not the engine: the cache slots they wrote
            // belong to them alone and are freed with them.
            _requests.Fail(output.Scheduled.Select(item => item.Request), $"engine step failed: {e.Message}");
        }
        PublishStatistics();
    }

    public void FailAll(string message)
    {
        _requests.FailAll(message);
        PublishStatistics();
    }

    /// <summary>Answers every request still in flight, leaving the scheduler alone: it may be what failed.</summary>
    public void AbortAll(string message) => _requests.AbortAllAtShutdown(message);

    /// <summary>Frees the KV cache and every model, whoever still holds them.</summary>
    public void Dispose()
    {
        _runner.Dispose();
        _loaded.Cache.Dispose();
        _loaded.Registry.DisposeAll();
    }

    private void PublishStatistics() => _statistics = EngineStatistics.Of(_scheduler, _requests);

    /// <summary>A sampler per thread (the engine thread and the kernel threads): a sampler's scratch arrays serve one row at a time.</summary>
    private static class RowSampler
    {
        [ThreadStatic]
        private static Sampler? _current;

        public static Sampler Current => _current ??= new Sampler();
    }
}
