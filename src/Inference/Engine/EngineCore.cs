using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Runtime;
using LlmServer.Inference.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The engine loop. Everything in here runs on the one engine thread: TorchSharp's dispose scopes
/// and inference mode are per thread, and a single owner of the scheduler, the block tables and the
/// cache needs no locks. Other threads talk to it only through <see cref="Post"/>.
/// </summary>
internal sealed class EngineCore
{
    private readonly EngineOptions _options;
    private readonly ConcurrentQueue<EngineCommand> _commands = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly Dictionary<string, ActiveRequest> _active = new(StringComparer.Ordinal);
    private readonly Sampler _sampler = new();
    private readonly TaskCompletionSource<ServedModel> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopping;
    private volatile bool _stoppedAccepting;
    private long _arrivals;
    private long _promptTokens, _generationTokens, _preemptions, _aborted;

    private Scheduler _scheduler = null!;
    private ModelRunner _runner = null!;
    private PagedKvCache _cache = null!;
    private ModelRegistry? _registry;

    // Background work (fine-tuning) shares this thread with serving; see RunBackgroundSliceIfDue.
    private readonly Queue<BackgroundRun> _pendingBackground = new();
    private BackgroundRun? _background;
    private long _servingTicks, _backgroundTicks;

    public EngineCore(EngineOptions options)
    {
        _options = options;
        Statistics = EngineStatistics.Idle;
        Metrics = new EngineMetrics(() => Statistics);
    }

    public EngineMetrics Metrics { get; }

    public Task<ServedModel> Ready => _ready.Task;

    /// <summary>What is served right now; safe to read from any thread.</summary>
    public ServedModelCatalog Catalog => _registry?.Catalog ?? ServedModelCatalog.Empty;
    public Task Stopped => _stopped.Task;
    public volatile EngineStatistics Statistics;

    public void Post(EngineCommand command)
    {
        _commands.Enqueue(command);
        _wake.Set();
        if (_stoppedAccepting)
        {
            // The loop has gone: whatever it did not take is answered here.
            RefuseQueuedCommands();
        }
    }

    /// <summary>Wakes an idle loop to look again (a background run was cancelled).</summary>
    public void Wake() => _wake.Set();

    public void RequestStop()
    {
        _stopping = true;
        _wake.Set();
    }

    /// <summary>The thread's body: load, then step until stopped.</summary>
    public void Run()
    {
        try
        {
            Load();
        }
        catch (Exception e)
        {
            _ready.TrySetException(e);
            _stopped.TrySetResult();
            return;
        }
        try
        {
            while (!_stopping)
            {
                try
                {
                    DrainCommands();
                    bool serving = _scheduler.HasWork;
                    if (serving)
                    {
                        long started = Stopwatch.GetTimestamp();
                        Step();
                        _servingTicks += Stopwatch.GetTimestamp() - started;
                    }
                    if (!RunBackgroundSliceIfDue(serving) && !serving)
                    {
                        _wake.WaitOne();
                    }
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // Steps already fail their own requests; anything that still gets here is a bug
                    // in the bookkeeping, and the requests in flight cannot be trusted to finish.
                    FailAll($"engine error: {e.Message}");
                }
            }
        }
        finally
        {
            foreach (ActiveRequest active in _active.Values.ToList())
            {
                Complete(active, active.Output.Finish(FinishReason.Aborted, "the server is shutting down"));
            }
            _stoppedAccepting = true;
            RefuseQueuedCommands();
            if (_background is not null)
            {
                FinishBackground(_background, new OperationCanceledException("the server is shutting down"));
            }
            while (_pendingBackground.TryDequeue(out BackgroundRun? pending))
            {
                pending.Done.TrySetCanceled();
            }
            _runner.Dispose();
            _cache.Dispose();
            _registry?.DisposeAll();
            _stopped.TrySetResult();
        }
    }

    private void Load()
    {
        MklCpuDispatch.EnsureApplied();
        if (_options.CpuThreads > 0)
        {
            torch.set_num_threads(_options.CpuThreads);
        }
        NativeMemoryTuning.KeepFreedMemoryForReuse();
        Device device = torch.device(_options.Device);
        var started = DateTimeOffset.UtcNow;
        Gpt2Model model = CheckpointLoader.Load(_options.ModelDirectory, _options.Dtype, device);
        model.PrepareForServing();
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(_options.ModelDirectory);
        ChatPromptFormatter formatter = ChatPromptFormatter.Load(_options.ModelDirectory, tokenizer);

        int maxModelLen = _options.MaxModelLen ?? model.Config.MaxPositions;
        if (maxModelLen > model.Config.MaxPositions)
        {
            throw new ArgumentException(
                $"max model length {maxModelLen} exceeds the model's n_positions {model.Config.MaxPositions}");
        }
        long bytesPerBlock = PagedKvCache.BytesPerBlock(model.Config, _options.BlockSize, _options.Dtype);
        long cacheBytes = _options.KvCacheMemoryFraction is double fraction
            ? (long)(fraction * DeviceMemory.AvailableBytes(_options.Device))
            : _options.KvCacheMemoryBytes;
        int blocksForOneSequence = (maxModelLen + _options.BlockSize - 1) / _options.BlockSize;
        // A small model would turn a byte budget meant for a big one into far more blocks than
        // MaxNumSeqs full-length sequences can use; twice that leaves room for the prefix cache.
        long usefulBlocks = 2L * _options.Scheduler.MaxNumSeqs * blocksForOneSequence;
        int blockCount = (int)Math.Min(Math.Min(int.MaxValue, usefulBlocks), cacheBytes / bytesPerBlock);
        if (blockCount < blocksForOneSequence)
        {
            throw new ArgumentException(
                $"the KV cache budget of {cacheBytes} bytes holds {blockCount} blocks, " +
                $"fewer than the {blocksForOneSequence} one {maxModelLen}-token sequence needs " +
                $"({bytesPerBlock} bytes per block); raise the KV cache memory or lower the max model length");
        }
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            throw new ArgumentException(
                $"the tokenizer has {tokenizer.VocabSize} tokens but config.json's vocab_size is {model.Config.VocabSize}; they do not belong together");
        }
        _cache = new PagedKvCache(model.Config, blockCount, _options.BlockSize, _options.Dtype, device);
        var blocks = new KvCacheManager(new BlockPool(blockCount), _options.BlockSize, _options.EnablePrefixCaching);
        _scheduler = new Scheduler(_options.Scheduler, blocks);
        _runner = new ModelRunner(model, _cache, blocks, ownsModel: false, weightsOf: request => _active[request.RequestId].Weights.ForRunner);
        var registry = new ModelRegistry(_options.ServedModelName, model.Config, _options.Dtype, device, maxModelLen);
        ServedModel served = registry.AddFull(_options.ServedModelName, _options.ModelDirectory, model, tokenizer, formatter, started);
        _registry = registry;
        PublishStatistics();
        _ready.TrySetResult(served);
    }

    private void DrainCommands()
    {
        while (_commands.TryDequeue(out EngineCommand? command))
        {
            switch (command)
            {
                case EngineCommand.Add add:
                    Admit(add);
                    break;
                case EngineCommand.Abort abort when _active.TryGetValue(abort.RequestId, out ActiveRequest? active):
                    _scheduler.Finish(active.Request);
                    Complete(active, active.Output.Finish(FinishReason.Aborted));
                    _aborted++;
                    PublishStatistics();
                    break;
                case EngineCommand.Invoke invoke:
                    // Between two steps: a load, unload or alias change lands atomically for new requests.
                    invoke.Action(_registry!);
                    break;
                case EngineCommand.StartBackground start:
                    _pendingBackground.Enqueue(new BackgroundRun(start.Create, start.Done, start.Cancellation) { Registry = _registry });
                    break;
            }
        }
    }

    private void Admit(EngineCommand.Add add)
    {
        try
        {
            if (_active.ContainsKey(add.RequestId))
            {
                throw new ArgumentException($"request id {add.RequestId} is already in use");
            }
            if (add.PromptTokenIds.Any(id => (uint)id >= (uint)_runner.VocabularySize))
            {
                throw new ArgumentException($"the prompt holds a token id outside the model's vocabulary of {_runner.VocabularySize}");
            }
            int weightsId = add.WeightsId ?? _registry!.Catalog.Resolve(null)?.WeightsId
                ?? throw new ArgumentException("no model answers requests that name none");
            // Bound here for the request's whole life: a swap after this point does not touch it.
            LoadedWeights weights = _registry!.Acquire(weightsId)
                ?? throw new ArgumentException("the model was unloaded before the request started; send it again");
            try
            {
                var request = new Request(add.RequestId, add.PromptTokenIds, add.Sampling, _arrivals++) { WeightsId = weightsId };
                var output = new RequestOutput(request, weights.Served.Tokenizer, Random.Shared.NextInt64());
                _scheduler.Add(request);
                _active[add.RequestId] = new ActiveRequest(request, output, add.Events, add.ArrivalTimestamp, weights);
            }
            catch
            {
                _registry.Release(weights);
                throw;
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Refused before it started: the request gets its answer, nobody else is affected.
            add.Events.TryWrite(RefusalEvent(add, e.Message));
            add.Events.TryComplete();
        }
    }

    /// <summary>Answers every request still queued after the loop ended; safe from any thread.</summary>
    private void RefuseQueuedCommands()
    {
        while (_commands.TryDequeue(out EngineCommand? command))
        {
            switch (command)
            {
                case EngineCommand.Add add:
                    add.Events.TryWrite(RefusalEvent(add, "the server is shutting down") with { FinishReason = FinishReason.Aborted });
                    add.Events.TryComplete();
                    break;
                case EngineCommand.Invoke invoke:
                    invoke.Action(null);
                    break;
                case EngineCommand.StartBackground start:
                    start.Done.TrySetCanceled();
                    break;
            }
        }
    }

    private static GenerationEvent RefusalEvent(EngineCommand.Add add, string message) => new()
    {
        Timings = new RequestTimings(add.ArrivalTimestamp, null, null, Stopwatch.GetTimestamp()),
        RequestId = add.RequestId,
        TextDelta = "",
        Tokens = [],
        FinishReason = FinishReason.Error,
        ErrorMessage = message,
        PromptTokenCount = add.PromptTokenIds.Count,
        OutputTokenCount = 0,
    };

    private void Step()
    {
        SchedulerOutput output = _scheduler.Schedule();
        _preemptions += output.Preempted.Count;
        if (output.IsEmpty)
        {
            // Only when making room evicted every running request, the one being scheduled
            // included; the next Schedule readmits the oldest of them with the whole pool free.
            PublishStatistics();
            return;
        }
        foreach (ScheduledRequest item in output.Scheduled)
        {
            ActiveRequest started = _active[item.Request.RequestId];
            if (started.FirstScheduledTimestamp is null)
            {
                started.FirstScheduledTimestamp = Stopwatch.GetTimestamp();
                Metrics.RecordQueueTime(Stopwatch.GetElapsedTime(started.ArrivalTimestamp, started.FirstScheduledTimestamp.Value));
            }
        }
        try
        {
            (IReadOnlyList<Request> sampling, ReadOnlyMemory<float> logits) = _runner.Execute(output);
            _scheduler.CommitStep(output);
            foreach (ScheduledRequest item in output.Scheduled)
            {
                // Prompt tokens computed this step (recomputation after preemption counts again).
                _promptTokens += Math.Max(0, Math.Min(item.Request.PromptLength, item.FirstPosition + item.NumScheduledTokens) - item.FirstPosition);
            }
            int vocabulary = _runner.VocabularySize;
            for (int row = 0; row < sampling.Count; row++)
            {
                ActiveRequest active = _active[sampling[row].RequestId];
                // Checkpoints may pad the embedding past the tokenizer's last id (nanoGPT pads to
                // 50304); those rows mean nothing, so they are never sampled nor reported.
                ReadOnlySpan<float> rowLogits = logits.Span.Slice(row * vocabulary, active.Weights.Served.Tokenizer.VocabSize);
                GenerationEvent generated;
                try
                {
                    GeneratedToken token = _sampler.Sample(rowLogits, active.Request,
                        active.Output.Random, active.Output.SuppressedTokens, active.Output.TextOffset);
                    generated = active.Output.Append(token);
                    _generationTokens++;
                    long now = Stopwatch.GetTimestamp();
                    if (active.LastTokenTimestamp is long previous)
                    {
                        Metrics.RecordInterTokenLatency(Stopwatch.GetElapsedTime(previous, now));
                    }
                    else
                    {
                        active.FirstTokenTimestamp = now;
                        Metrics.RecordFirstToken(Stopwatch.GetElapsedTime(active.ArrivalTimestamp, now));
                    }
                    active.LastTokenTimestamp = now;
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // One request's bad row (NaN logits, say) fails that request alone, not the batch.
                    generated = active.Output.Finish(FinishReason.Error, e.Message);
                }
                if (generated.IsFinal)
                {
                    _scheduler.Finish(active.Request);
                    Complete(active, generated);
                }
                else
                {
                    active.Events.TryWrite(generated);
                }
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A failed step fails the requests in it, not the engine: the cache slots they wrote
            // belong to them alone and are freed with them.
            foreach (ScheduledRequest item in output.Scheduled)
            {
                if (_active.TryGetValue(item.Request.RequestId, out ActiveRequest? active))
                {
                    _scheduler.Finish(active.Request);
                    Complete(active, active.Output.Finish(FinishReason.Error, $"engine step failed: {e.Message}"));
                }
            }
        }
        PublishStatistics();
    }

    private void FailAll(string message)
    {
        foreach (ActiveRequest active in _active.Values.ToList())
        {
            _scheduler.Finish(active.Request);
            Complete(active, active.Output.Finish(FinishReason.Error, message));
        }
        PublishStatistics();
    }

    private void Complete(ActiveRequest active, GenerationEvent final, bool track = true)
    {
        final = final with
        {
            Timings = new RequestTimings(active.ArrivalTimestamp, active.FirstScheduledTimestamp, active.FirstTokenTimestamp, Stopwatch.GetTimestamp()),
        };
        active.Events.TryWrite(final);
        active.Events.TryComplete();
        if (track)
        {
            _active.Remove(active.Request.RequestId);
            _registry!.Release(active.Weights);
            Metrics.RecordFinished(final.FinishReason ?? FinishReason.Error, Stopwatch.GetElapsedTime(active.ArrivalTimestamp));
        }
    }

    private void PublishStatistics()
    {
        KvCacheManager cache = _scheduler.Cache;
        Statistics = new EngineStatistics(_scheduler.RunningCount, _scheduler.WaitingCount, cache.Pool.Usage, cache.Pool.FreeBlockCount,
            cache.Pool.BlockCount, _promptTokens, _generationTokens, _preemptions, _aborted, cache.PrefixCacheQueries, cache.PrefixCacheHits);
    }

    /// <summary>
    /// Runs one slice of background work when it is due. With serving idle it always is; with
    /// requests in flight, background work gets at most its share of the engine's time, so a
    /// fine-tune slows streams by a bounded amount instead of stalling them.
    /// </summary>
    /// <returns>Whether a slice ran.</returns>
    private bool RunBackgroundSliceIfDue(bool serving)
    {
        if (_background is null && !StartNextBackground())
        {
            return false;
        }
        BackgroundRun run = _background!;
        if (run.Cancellation.IsCancellationRequested)
        {
            FinishBackground(run, new OperationCanceledException(run.Cancellation));
            return true;
        }
        double share = _options.BackgroundShare;
        if (serving && (share <= 0 || (share < 1 && _backgroundTicks > share / (1 - share) * _servingTicks)))
        {
            return false;
        }
        long started = Stopwatch.GetTimestamp();
        bool more;
        try
        {
            more = run.Work!.RunSlice();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            FinishBackground(run, e);
            return true;
        }
        if (serving)
        {
            _backgroundTicks += Stopwatch.GetTimestamp() - started;
        }
        if (!more)
        {
            FinishBackground(run, failure: null);
        }
        return true;
    }

    private bool StartNextBackground()
    {
        while (_pendingBackground.TryDequeue(out BackgroundRun? run))
        {
            if (run.Cancellation.IsCancellationRequested)
            {
                run.Done.TrySetCanceled(run.Cancellation);
                continue;
            }
            try
            {
                run.Work = run.Create(run);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                FinishBackground(run, e);
                continue;
            }
            _background = run;
            _servingTicks = _backgroundTicks = 0;
            return true;
        }
        return false;
    }

    private void FinishBackground(BackgroundRun run, Exception? failure)
    {
        try
        {
            run.Work?.Dispose();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            failure ??= e;
        }
        foreach (LoadedWeights weights in run.Held)
        {
            _registry!.Release(weights);
        }
        run.Held.Clear();
        if (_background == run)
        {
            _background = null;
        }
        switch (failure)
        {
            case null: run.Done.TrySetResult(); break;
            case OperationCanceledException: run.Done.TrySetCanceled(run.Cancellation); break;
            default: run.Done.TrySetException(failure); break;
        }
    }

    /// <summary>One piece of background work, and the weights it holds while it runs.</summary>
    private sealed class BackgroundRun(Func<IEngineModelAccess, IEngineBackgroundWork> create, TaskCompletionSource done,
        CancellationToken cancellation) : IEngineModelAccess
    {
        public Func<IEngineModelAccess, IEngineBackgroundWork> Create { get; } = create;
        public TaskCompletionSource Done { get; } = done;
        public CancellationToken Cancellation { get; } = cancellation;
        public IEngineBackgroundWork? Work { get; set; }
        public List<LoadedWeights> Held { get; } = [];
        public ModelRegistry? Registry { get; set; }

        public (Gpt2Model Model, ServedModel Served) UseFullModel(string name)
        {
            LoadedWeights weights = Registry!.AcquireFullModel(name);
            Held.Add(weights);
            return (weights.Model, weights.Served);
        }
    }

    private sealed class ActiveRequest(Request request, RequestOutput output, ChannelWriter<GenerationEvent> events, long arrivalTimestamp,
        LoadedWeights weights)
    {
        public LoadedWeights Weights { get; } = weights;
        public Request Request { get; } = request;
        public RequestOutput Output { get; } = output;
        public ChannelWriter<GenerationEvent> Events { get; } = events;
        public long ArrivalTimestamp { get; } = arrivalTimestamp;
        /// <summary>When the scheduler first gave it tokens: its time in the queue ends here.</summary>
        public long? FirstScheduledTimestamp { get; set; }
        public long? FirstTokenTimestamp { get; set; }
        public long? LastTokenTimestamp { get; set; }
    }
}

/// <summary>Messages from request threads to the engine thread.</summary>
internal abstract record EngineCommand
{
    public sealed record Add(string RequestId, IReadOnlyList<int> PromptTokenIds, SamplingParameters Sampling,
        ChannelWriter<GenerationEvent> Events, int? WeightsId) : EngineCommand
    {
        public long ArrivalTimestamp { get; } = Stopwatch.GetTimestamp();
    }

    public sealed record Abort(string RequestId) : EngineCommand;

    /// <summary>
    /// Runs an action on the engine thread between steps (model loads, unloads, alias changes);
    /// it gets no registry when the engine has stopped and must fail its caller then.
    /// </summary>
    public sealed record Invoke(Action<ModelRegistry?> Action) : EngineCommand;

    public sealed record StartBackground(Func<IEngineModelAccess, IEngineBackgroundWork> Create, TaskCompletionSource Done,
        CancellationToken Cancellation) : EngineCommand;
}
