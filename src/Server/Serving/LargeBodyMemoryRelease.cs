using System.Runtime;

namespace LlmServer.Serving;

/// <summary>
/// Gives memory back to the operating system once large request bodies have come and gone.
/// </summary>
/// <remarks>
/// A 20 MB prompt makes ~160 MB of short-lived large objects however it is read (the JSON value's
/// bytes, the string as UTF-16, the rendered template, the UTF-8 of each word). The GC frees them at
/// its next collection but keeps the pages: measured after 17 such bodies (each refused with a quick
/// 400), RSS stayed at 550 MiB against 270 MiB at start, and an idle server never collects again.
/// Workstation GC (1,030 MiB), no DATAS (910 MiB) and GCConserveMemory=7 (560 MiB) did no better than
/// the default server GC with DATAS. So a second after the last large body, one aggressive
/// collection (compacting, and decommitting what is free) runs: 270 MiB again. It pauses the process
/// for about as long as a full collection of the live managed heap, which is small here (the weights
/// are native), and runs at most every <see cref="MinimumInterval"/>: bursts of large bodies cost one.
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
