using System.Runtime;

namespace LlmServer.OpenAi;

/// <summary>
/// Gives memory back to the operating system once large request bodies have come and gone.
/// </summary>
/// <remarks>
/// A 20 MB prompt makes several times its size in short-lived large objects however it is read (the
/// JSON value's bytes, the string as UTF-16, the rendered template, the UTF-8 of each word). The GC
/// frees them at its next collection but keeps the pages, and an idle server never collects again,
/// so a series of large bodies leaves the process much larger than it started. Workstation GC, no
/// DATAS and GCConserveMemory did no better than the default server GC with DATAS
/// (docs/benchmarks.md has the figures). So a second after the last large body, one aggressive
/// collection (compacting, and decommitting what is free) runs. It pauses the process for about as
/// long as a full collection of the live managed heap, which is small here (the weights are native),
/// and runs at most every <see cref="MinimumInterval"/>: bursts of large bodies cost one.
/// </remarks>
public static class LargeBodyMemoryRelease
{
    /// <summary>Bodies from this size on are worth a collection after them.</summary>
    public const long Threshold = 1 << 20;

    private static readonly TimeSpan QuietPeriod = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan MinimumInterval = TimeSpan.FromSeconds(10);

    private static readonly Lock Gate = new();
    private static Timer? _timer;
    private static DateTime _lastCollection = DateTime.MinValue;

    /// <summary>Notes the body once its response is sent: what it made is garbage by then.</summary>
    public static void AfterResponse(HttpResponse response, long bodyBytes)
    {
        if (bodyBytes >= Threshold)
        {
            response.OnCompleted(() =>
            {
                NoteBody(bodyBytes);
                return Task.CompletedTask;
            });
        }
    }

    /// <summary>Notes a body of <paramref name="bytes"/>; a large one (re)starts the wait before the collection.</summary>
    public static void NoteBody(long bytes)
    {
        if (bytes < Threshold)
        {
            return;
        }
        lock (Gate)
        {
            DateTime due = Max(DateTime.UtcNow + QuietPeriod, _lastCollection + MinimumInterval);
            TimeSpan delay = due - DateTime.UtcNow;
            _timer ??= new Timer(_ => Collect(), null, Timeout.Infinite, Timeout.Infinite);
            _timer.Change(delay, Timeout.InfiniteTimeSpan);
        }
    }

    private static void Collect()
    {
        lock (Gate)
        {
            _lastCollection = DateTime.UtcNow;
        }
        // Large objects are compacted too, so the freed space ends up in whole regions to give back.
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    private static DateTime Max(DateTime a, DateTime b) => a > b ? a : b;
}
