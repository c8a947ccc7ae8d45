using System.Runtime.CompilerServices;
using System.Threading.Channels;
using LlmServer.Inference.Sampling;

namespace LlmServer.Inference.Engine;

/// <summary>A request for the engine: prompt token ids, how to sample, and on which weights.</summary>
/// <param name="WeightsId">The <see cref="ServedModel.WeightsId"/> the request was resolved to; null for the default model.</param>
public sealed record EngineSubmission(string RequestId, IReadOnlyList<int> PromptTokenIds, SamplingParameters Sampling, int? WeightsId = null);

/// <summary>
/// The engine as seen from request threads: submit a request and read its events as an async
/// stream, or cancel it. Implementations run the model elsewhere (one dedicated thread here).
/// </summary>
public interface IEngineClient
{
    /// <summary>Completes with the served model once it is loaded; faults if loading failed.</summary>
    Task<ServedModel> Ready { get; }

    EngineStatistics Statistics { get; }

    /// <summary>The models and aliases served right now (empty until loaded).</summary>
    ServedModelCatalog Models { get; }

    /// <summary>
    /// Reserves room for <paramref name="requests"/> requests in the bounded queue before any is
    /// submitted, so an API request is refused whole (429) instead of queued without bound.
    /// Dispose the admission when its requests are done; null means the engine is full.
    /// </summary>
    EngineAdmission? TryAdmit(int requests);

    /// <summary>The most requests the engine ever holds at once (running plus waiting).</summary>
    int AdmissionLimit { get; }

    /// <summary>
    /// Streams the request's events until its final one. Cancelling <paramref name="cancellationToken"/>
    /// (or abandoning the enumeration) aborts the request and frees its cache blocks within one step.
    /// </summary>
    IAsyncEnumerable<GenerationEvent> GenerateAsync(EngineSubmission submission, CancellationToken cancellationToken = default);
}

/// <summary>
/// Changes what the engine serves, and runs work on its thread. Each change happens between two
/// engine steps: requests already admitted finish on the weights they started with.
/// </summary>
public interface IEngineModelAdministration
{
    /// <summary>Loads a Hugging Face model directory or a PEFT LoRA adapter and serves it as <paramref name="name"/>.</summary>
    /// <param name="baseName">For an adapter, the model it runs on (default: its adapter_config.json's base).</param>
    Task<ServedModel> LoadModelAsync(string name, string path, string? baseName = null);

    Task UnloadModelAsync(string name);

    /// <summary>Points <paramref name="alias"/> at <paramref name="model"/>, loading it from <paramref name="loadFrom"/> first if it is not served.</summary>
    Task<ServedModel> SetAliasAsync(string alias, string model, string? loadFrom = null);

    Task RemoveAliasAsync(string alias);

    /// <summary>
    /// Runs background work on the engine thread, sliced between serving steps, after any earlier
    /// work finishes. Completes when the work is done, faults with its error, or is cancelled
    /// (the work is disposed before the next slice once <paramref name="cancellationToken"/> fires).
    /// </summary>
    Task RunBackgroundAsync(Func<IEngineModelAccess, IEngineBackgroundWork> create, CancellationToken cancellationToken);
}

/// <summary>Owns the engine thread and is the only way in to it.</summary>
public sealed class EngineClient : IEngineClient, IEngineModelAdministration, IAsyncDisposable
{
    private readonly EngineLoop _loop;
    private readonly Thread _thread;
    private readonly int _admissionLimit;
    private int _admitted;
    private int _disposed;

    public EngineClient(EngineOptions options)
    {
        _admissionLimit = options.Scheduler.MaxNumSeqs + options.MaxQueuedRequests;
        _loop = new EngineLoop(options);
        _thread = new Thread(_loop.Run) { IsBackground = true, Name = "engine" };
        _thread.Start();
    }

    public Task<ServedModel> Ready => _loop.Ready;

    public EngineStatistics Statistics => _loop.Statistics;

    public ServedModelCatalog Models => _loop.Catalog;

    public Task<ServedModel> LoadModelAsync(string name, string path, string? baseName = null) =>
        InvokeAsync(registry => registry.Load(name, path, baseName));

    public Task UnloadModelAsync(string name) => InvokeAsync(registry =>
    {
        registry.Unload(name);
        return true;
    });

    public Task<ServedModel> SetAliasAsync(string alias, string model, string? loadFrom = null) =>
        InvokeAsync(registry => registry.SetAlias(alias, model, loadFrom));

    public Task RemoveAliasAsync(string alias) => InvokeAsync(registry =>
    {
        registry.RemoveAlias(alias);
        return true;
    });

    public async Task RunBackgroundAsync(Func<IEngineModelAccess, IEngineBackgroundWork> create, CancellationToken cancellationToken)
    {
        await _loop.Ready.ConfigureAwait(false);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop.Post(new EngineCommand.StartBackground(create, done, cancellationToken));
        // Wake the loop when cancelled, so an idle engine notices at once.
        await using CancellationTokenRegistration wake = cancellationToken.Register(() => _loop.Wake());
        await done.Task.ConfigureAwait(false);
    }

    private async Task<T> InvokeAsync<T>(Func<ModelRegistry, T> action)
    {
        await _loop.Ready.ConfigureAwait(false);
        var result = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _loop.Post(new EngineCommand.Invoke(registry =>
        {
            if (registry is null)
            {
                result.TrySetException(new InvalidOperationException("the engine has stopped"));
                return;
            }
            try
            {
                result.TrySetResult(action(registry));
            }
            catch (Exception e)
            {
                result.TrySetException(e);
            }
        }));
        return await result.Task.ConfigureAwait(false);
    }

    public int AdmissionLimit => _admissionLimit;

    public EngineAdmission? TryAdmit(int requests)
    {
        while (true)
        {
            int admitted = Volatile.Read(ref _admitted);
            if (admitted + requests > _admissionLimit)
            {
                return null;
            }
            if (Interlocked.CompareExchange(ref _admitted, admitted + requests, admitted) == admitted)
            {
                return new EngineAdmission(() => Interlocked.Add(ref _admitted, -requests));
            }
        }
    }

    public async IAsyncEnumerable<GenerationEvent> GenerateAsync(EngineSubmission submission,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await _loop.Ready.ConfigureAwait(false);
        var events = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        _loop.Post(new EngineCommand.Add(submission.RequestId, submission.PromptTokenIds, submission.Sampling, events.Writer, submission.WeightsId));
        bool finished = false;
        try
        {
            while (await events.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                while (events.Reader.TryRead(out GenerationEvent? generated))
                {
                    finished |= generated.IsFinal;
                    yield return generated;
                }
            }
        }
        finally
        {
            if (!finished)
            {
                _loop.Post(new EngineCommand.Abort(submission.RequestId));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Registered under several service types, so the container may dispose it more than once.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            await _loop.Stopped.ConfigureAwait(false);
            return;
        }
        _loop.RequestStop();
        await _loop.Stopped.ConfigureAwait(false);
        _loop.Metrics.Dispose();
    }
}
