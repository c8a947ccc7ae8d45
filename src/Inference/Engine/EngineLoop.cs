using System.Diagnostics;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The engine thread's body: loads the model, then until stopped takes the commands posted to it,
/// runs an <see cref="EngineCore"/> step while there is work and a slice of background work when
/// one is due, and sleeps when there is neither. Other threads talk to it only through
/// <see cref="Post"/>.
/// </summary>
internal sealed class EngineLoop
{
    private readonly EngineOptions _options;
    private readonly EngineMailbox _mailbox = new();
    private readonly TaskCompletionSource<ServedModel> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _stopping;
    private volatile EngineCore? _core;
    private BackgroundWorkSlicer _background = null!;

    public EngineLoop(EngineOptions options)
    {
        _options = options;
        Metrics = new EngineMetrics(() => Statistics);
    }

    public EngineMetrics Metrics { get; }
    public Task<ServedModel> Ready => _ready.Task;
    public Task Stopped => _stopped.Task;
    public EngineStatistics Statistics => _core?.Statistics ?? EngineStatistics.Idle;

    /// <summary>What is served right now; safe to read from any thread.</summary>
    public ServedModelCatalog Catalog => _core?.Registry.Catalog ?? ServedModelCatalog.Empty;

    public void Post(EngineCommand command) => _mailbox.Post(command);

    /// <summary>Wakes an idle loop to look again (a background run was cancelled).</summary>
    public void Wake() => _mailbox.Wake();

    public void RequestStop()
    {
        _stopping = true;
        _mailbox.Wake();
    }

    /// <summary>The thread's body: load, then step until stopped.</summary>
    public void Run()
    {
        EngineCore core;
        try
        {
            LoadedEngine loaded = EngineLoader.Start(_options);
            core = new EngineCore(loaded, Metrics);
            _background = new BackgroundWorkSlicer(loaded.Registry, _options.BackgroundShare);
            _core = core;
            _ready.TrySetResult(loaded.Served);
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
                RunOnce(core);
            }
        }
        finally
        {
            core.AbortAll("the server is shutting down");
            _mailbox.Close();
            _background.CancelAll("the server is shutting down");
            core.Dispose();
            _stopped.TrySetResult();
        }
    }

    private void RunOnce(EngineCore core)
    {
        try
        {
            TakeCommands(core);
            bool serving = core.HasWork;
            if (serving)
            {
                long started = Stopwatch.GetTimestamp();
                core.Step();
                _background.CountServing(Stopwatch.GetTimestamp() - started);
            }
            if (!_background.RunSliceIfDue(serving) && !serving)
            {
                _mailbox.WaitForWork();
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Steps already fail their own requests; anything that still gets here is a bug
            // in the bookkeeping, and the requests in flight cannot be trusted to finish.
            core.FailAll($"engine error: {e.Message}");
        }
    }

    private void TakeCommands(EngineCore core)
    {
        while (_mailbox.TryTake(out EngineCommand? command))
        {
            switch (command)
            {
                case EngineCommand.Add add:
                    core.Add(add);
                    break;
                case EngineCommand.Abort abort:
                    core.Abort(abort.RequestId);
                    break;
                case EngineCommand.Invoke invoke:
                    // Between two steps: a load, unload or alias change lands atomically for new requests.
                    invoke.Action(core.Registry);
                    break;
                case EngineCommand.StartBackground start:
                    _background.Enqueue(start);
                    break;
            }
        }
    }
}
