using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace LlmServer.Inference.Engine;

/// <summary>A request for the engine: prompt token ids and how to sample.</summary>
public sealed record EngineSubmission(string RequestId, IReadOnlyList<int> PromptTokenIds, SamplingParameters Sampling);

/// <summary>
/// The engine as seen from request threads: submit a request and read its events as an async
/// stream, or cancel it. Implementations run the model elsewhere (one dedicated thread here).
/// </summary>
public interface IEngineClient
{
    /// <summary>Completes with the served model once it is loaded; faults if loading failed.</summary>
    Task<ServedModel> Ready { get; }

    EngineStatistics Statistics { get; }

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

/// <summary>Owns the engine thread and is the only way in to it.</summary>
public sealed class EngineClient : IEngineClient, IAsyncDisposable
{
    private readonly EngineCore _core;
    private readonly Thread _thread;
    private readonly int _admissionLimit;
    private int _admitted;

    public EngineClient(EngineOptions options)
    {
        _admissionLimit = options.Scheduler.MaxNumSeqs + options.MaxQueuedRequests;
        _core = new EngineCore(options);
        _thread = new Thread(_core.Run) { IsBackground = true, Name = "engine" };
        _thread.Start();
    }

    public Task<ServedModel> Ready => _core.Ready;

    public EngineStatistics Statistics => _core.Statistics;

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
        await _core.Ready.ConfigureAwait(false);
        var events = Channel.CreateUnbounded<GenerationEvent>(new UnboundedChannelOptions { SingleWriter = true, SingleReader = true });
        _core.Post(new EngineCommand.Add(submission.RequestId, submission.PromptTokenIds, submission.Sampling, events.Writer));
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
                _core.Post(new EngineCommand.Abort(submission.RequestId));
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        _core.RequestStop();
        await _core.Stopped.ConfigureAwait(false);
        _core.Metrics.Dispose();
    }
}
