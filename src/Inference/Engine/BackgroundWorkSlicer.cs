using System.Diagnostics;
using LlmServer.Inference.Models;

namespace LlmServer.Inference.Engine;

/// <summary>
/// Runs background work (fine-tuning) on the engine thread, one short slice at a time between
/// serving steps, one piece of work after another. With serving idle a slice is always due; with
/// requests in flight, background work gets at most <paramref name="share"/> of the thread's time,
/// so a fine-tune slows streams by a bounded amount instead of stalling them. Engine thread only.
/// </summary>
/// <param name="share">From 0 (only when idle) to 1 (a slice after every step).</param>
internal sealed class BackgroundWorkSlicer(ModelRegistry registry, double share)
{
    private readonly Queue<BackgroundRun> _pending = new();
    private BackgroundRun? _current;
    private long _servingTicks, _backgroundTicks;

    public void Enqueue(EngineCommand.StartBackground start) =>
        _pending.Enqueue(new BackgroundRun(start.Create, start.Done, start.Cancellation, registry));

    /// <summary>Counts time the thread spent serving, in <see cref="Stopwatch"/> ticks, against which the share is measured.</summary>
    public void CountServing(long ticks) => _servingTicks += ticks;

    /// <summary>Runs one slice of the current work if one is due.</summary>
    /// <returns>Whether a slice ran (or a cancelled run was ended).</returns>
    public bool RunSliceIfDue(bool serving)
    {
        if (_current is null && !StartNext())
        {
            return false;
        }
        BackgroundRun run = _current!;
        if (run.Cancellation.IsCancellationRequested)
        {
            Finish(run, new OperationCanceledException(run.Cancellation));
            return true;
        }
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
            Finish(run, e);
            return true;
        }
        if (serving)
        {
            _backgroundTicks += Stopwatch.GetTimestamp() - started;
        }
        if (!more)
        {
            Finish(run, failure: null);
        }
        return true;
    }

    /// <summary>Ends the current work as cancelled and cancels what waits, at shutdown.</summary>
    public void CancelAll(string reason)
    {
        if (_current is not null)
        {
            Finish(_current, new OperationCanceledException(reason));
        }
        while (_pending.TryDequeue(out BackgroundRun? pending))
        {
            pending.Done.TrySetCanceled();
        }
    }

    private bool StartNext()
    {
        while (_pending.TryDequeue(out BackgroundRun? run))
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
                Finish(run, e);
                continue;
            }
            _current = run;
            _servingTicks = _backgroundTicks = 0;
            return true;
        }
        return false;
    }

    private void Finish(BackgroundRun run, Exception? failure)
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
            registry.Release(weights);
        }
        run.Held.Clear();
        if (_current == run)
        {
            _current = null;
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
        CancellationToken cancellation, ModelRegistry registry) : IEngineModelAccess
    {
        public Func<IEngineModelAccess, IEngineBackgroundWork> Create { get; } = create;
        public TaskCompletionSource Done { get; } = done;
        public CancellationToken Cancellation { get; } = cancellation;
        public IEngineBackgroundWork? Work { get; set; }
        public List<LoadedWeights> Held { get; } = [];

        public (ICausalLanguageModel Model, ServedModel Served) UseFullModel(string name)
        {
            LoadedWeights weights = registry.AcquireFullModel(name);
            Held.Add(weights);
            return (weights.Model, weights.Served);
        }
    }
}
