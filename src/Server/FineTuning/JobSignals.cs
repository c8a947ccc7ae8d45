using System.Collections.Concurrent;
using System.Threading.Channels;

namespace LlmServer.FineTuning;

/// <summary>
/// How the API reaches the fine-tuning worker without polling: a wake-up when a job is created,
/// and a cancellation token per running job that a client's cancel trips at once. The store
/// stays the truth (status, cancel_requested); these only save the worker from waiting to notice.
/// </summary>
public sealed class JobSignals
{
    // Capacity one, extra writes dropped: any number of creations while the worker is busy is one
    // wake-up, and the worker looks at the store for everything there is to do.
    private readonly Channel<bool> _wakeUps = Channel.CreateBounded<bool>(new BoundedChannelOptions(1)
    {
        FullMode = BoundedChannelFullMode.DropWrite,
    });
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _cancellations = new();

    /// <summary>Wakes the worker if it waits, or makes its next wait return at once.</summary>
    public void NotifyJobCreated() => _wakeUps.Writer.TryWrite(true);

    /// <summary>Completes when a job was created since the last wait returned.</summary>
    public async Task WaitForJobAsync(CancellationToken cancellationToken) => await _wakeUps.Reader.ReadAsync(cancellationToken);

    /// <summary>
    /// The token that trips when a client cancels <paramref name="jobId"/>. A cancel that came
    /// first is not lost: the token is then already cancelled. Call <see cref="Forget"/> when the job ends.
    /// </summary>
    public CancellationToken TokenFor(string jobId) => _cancellations.GetOrAdd(jobId, _ => new CancellationTokenSource()).Token;

    /// <summary>Trips the job's token; the API calls this after the store has recorded cancel_requested.</summary>
    public void Cancel(string jobId) => _cancellations.GetOrAdd(jobId, _ => new CancellationTokenSource()).Cancel();

    /// <summary>Drops a finished job's token.</summary>
    public void Forget(string jobId)
    {
        if (_cancellations.TryRemove(jobId, out CancellationTokenSource? source))
        {
            source.Dispose();
        }
    }
}
