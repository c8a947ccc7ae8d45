using System.Diagnostics;

namespace LlmServer.Inference.Scheduling;

/// <summary>
/// When the engine saw a request reach each phase, as <see cref="Stopwatch.GetTimestamp"/> values:
/// arrival (submitted), first scheduled (the queue ends, prefill begins), first token (prefill ends,
/// decode begins) and finish. The request owns them; the engine thread marks them as the request
/// moves on and hands them over in the final event, after the last mark, so the API side can turn
/// them into trace spans without the engine knowing about tracing. The engine's latency metrics
/// are read from here too.
/// </summary>
public sealed class RequestTimings(long arrivalTimestamp)
{
    private long? _previousTokenTimestamp;

    public long ArrivalTimestamp { get; } = arrivalTimestamp;

    /// <summary>Null when the request ended before it was ever scheduled.</summary>
    public long? FirstScheduledTimestamp { get; private set; }

    /// <summary>Null when the request ended before its first token.</summary>
    public long? FirstTokenTimestamp { get; private set; }

    public long? LastTokenTimestamp { get; private set; }

    public long FinishedTimestamp { get; private set; }

    /// <summary>From arrival to the first step that gave the request tokens.</summary>
    public TimeSpan QueueTime => Stopwatch.GetElapsedTime(ArrivalTimestamp, FirstScheduledTimestamp ?? FinishedTimestamp);

    public TimeSpan TimeToFirstToken => Stopwatch.GetElapsedTime(ArrivalTimestamp, FirstTokenTimestamp ?? FinishedTimestamp);

    /// <summary>The gap between the last two tokens; null until there are two.</summary>
    public TimeSpan? LastInterTokenLatency =>
        _previousTokenTimestamp is long previous ? Stopwatch.GetElapsedTime(previous, LastTokenTimestamp!.Value) : null;

    /// <summary>From arrival to finish.</summary>
    public TimeSpan Latency => Stopwatch.GetElapsedTime(ArrivalTimestamp, FinishedTimestamp);

    /// <summary>Marks a step that gives the request tokens; true the first time, when its time in the queue ends.</summary>
    public bool MarkScheduled(long timestamp)
    {
        if (FirstScheduledTimestamp is not null)
        {
            return false;
        }
        FirstScheduledTimestamp = timestamp;
        return true;
    }

    public void MarkToken(long timestamp)
    {
        _previousTokenTimestamp = LastTokenTimestamp;
        FirstTokenTimestamp ??= timestamp;
        LastTokenTimestamp = timestamp;
    }

    public void MarkFinished(long timestamp) => FinishedTimestamp = timestamp;

    /// <summary>A timestamp of this record as wall-clock time, given one (timestamp, wall clock) pair read together.</summary>
    public static DateTimeOffset ToWallClock(long timestamp, long nowTimestamp, DateTimeOffset now) =>
        now - Stopwatch.GetElapsedTime(timestamp, nowTimestamp);
}
