using System.Diagnostics;
using LlmServer.Bench.Progress;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// Finished, failed and in-flight requests of a run in progress, updated from many request tasks at
/// once. Reports progress under the same lock so that reports arrive in order.
/// </summary>
internal sealed class LoadTestCounters(int total, long startTimestamp, IProgress<BenchmarkProgress>? progress)
{
    private readonly Lock _lock = new();
    private int _finished;
    private int _failed;
    private int _inFlight;

    public int PeakInFlight { get; private set; }

    public void RequestSent()
    {
        lock (_lock)
        {
            _inFlight++;
            PeakInFlight = Math.Max(PeakInFlight, _inFlight);
        }
    }

    public void RequestFinished(RequestOutcome outcome)
    {
        lock (_lock)
        {
            _inFlight--;
            _finished++;
            if (!outcome.Succeeded)
            {
                _failed++;
            }
            progress?.Report(new BenchmarkProgress(_finished, total, _failed, Stopwatch.GetElapsedTime(startTimestamp)));
        }
    }
}
