using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using LlmServer.Inference.Models;
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
    private int _sampleableVocabulary;
    private ModelRunner _runner = null!;
    private ServedModel _model = null!;

    public EngineCore(EngineOptions options)
    {
        _options = options;
        Statistics = EngineStatistics.Idle;
        Metrics = new EngineMetrics(() => Statistics);
    }

    public EngineMetrics Metrics { get; }

    public Task<ServedModel> Ready => _ready.Task;
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
                    if (!_scheduler.HasWork)
                    {
                        _wake.WaitOne();
                        continue;
                    }
                    Step();
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
            _runner.Dispose();
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
        var cache = new PagedKvCache(model.Config, blockCount, _options.BlockSize, _options.Dtype, device);
        var blocks = new KvCacheManager(new BlockPool(blockCount), _options.BlockSize, _options.EnablePrefixCaching);
        _scheduler = new Scheduler(_options.Scheduler, blocks);
        _runner = new ModelRunner(model, cache, blocks);
        if (tokenizer.VocabSize > model.Config.VocabSize)
        {
            throw new ArgumentException(
                $"the tokenizer has {tokenizer.VocabSize} tokens but config.json's vocab_size is {model.Config.VocabSize}; they do not belong together");
        }
        _sampleableVocabulary = tokenizer.VocabSize;
        _model = new ServedModel(_options.ServedModelName, _options.ModelDirectory, model.Config, tokenizer, formatter, maxModelLen, started);
        PublishStatistics();
        _ready.TrySetResult(_model);
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
            var request = new Request(add.RequestId, add.PromptTokenIds, add.Sampling, _arrivals++);
            var output = new RequestOutput(request, _model.Tokenizer, Random.Shared.NextInt64());
            _scheduler.Add(request);
            _active[add.RequestId] = new ActiveRequest(request, output, add.Events, add.ArrivalTimestamp);
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
            if (command is EngineCommand.Add add)
            {
                add.Events.TryWrite(RefusalEvent(add, "the server is shutting down") with { FinishReason = FinishReason.Aborted });
                add.Events.TryComplete();
            }
        }
    }

    private static GenerationEvent RefusalEvent(EngineCommand.Add add, string message) => new()
    {
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
            if (!started.WasScheduled)
            {
                started.WasScheduled = true;
                Metrics.RecordQueueTime(Stopwatch.GetElapsedTime(started.ArrivalTimestamp));
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
                ReadOnlySpan<float> rowLogits = logits.Span.Slice(row * vocabulary, _sampleableVocabulary);
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
        active.Events.TryWrite(final);
        active.Events.TryComplete();
        if (track)
        {
            _active.Remove(active.Request.RequestId);
            Metrics.RecordFinished(final.FinishReason ?? FinishReason.Error, Stopwatch.GetElapsedTime(active.ArrivalTimestamp));
        }
    }

    private void PublishStatistics()
    {
        KvCacheManager cache = _scheduler.Cache;
        Statistics = new EngineStatistics(_scheduler.RunningCount, _scheduler.WaitingCount, cache.Pool.Usage, cache.Pool.FreeBlockCount,
            cache.Pool.BlockCount, _promptTokens, _generationTokens, _preemptions, _aborted, cache.PrefixCacheQueries, cache.PrefixCacheHits);
    }

    private sealed class ActiveRequest(Request request, RequestOutput output, ChannelWriter<GenerationEvent> events, long arrivalTimestamp)
    {
        public Request Request { get; } = request;
        public RequestOutput Output { get; } = output;
        public ChannelWriter<GenerationEvent> Events { get; } = events;
        public long ArrivalTimestamp { get; } = arrivalTimestamp;
        public bool WasScheduled { get; set; }
        public long? LastTokenTimestamp { get; set; }
    }
}

/// <summary>Messages from request threads to the engine thread.</summary>
internal abstract record EngineCommand
{
    public sealed record Add(string RequestId, IReadOnlyList<int> PromptTokenIds, SamplingParameters Sampling,
        ChannelWriter<GenerationEvent> Events) : EngineCommand
    {
        public long ArrivalTimestamp { get; } = Stopwatch.GetTimestamp();
    }

    public sealed record Abort(string RequestId) : EngineCommand;
}
