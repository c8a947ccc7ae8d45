using System.Diagnostics;

namespace LlmServer.Inference.Scheduling;

/// <summary>
/// When the engine saw a request reach each phase, as <see cref="Stopwatch.GetTimestamp"/> values:
/// arrival (submitted), first scheduled (the queue ends, prefill begins), first token (prefill ends,
/// decode begins) and finish. Recorded on the engine thread and reported in the final event, so the
/// API side can turn them into trace spans without the engine knowing about tracing.
/// </summary>
/// <param name="FirstScheduledTimestamp">Null when the request ended before it was ever scheduled.</param>
/// <param name="FirstTokenTimestamp">Null when the request ended before its first token.</param>
public sealed record RequestTimings(long ArrivalTimestamp, long? FirstScheduledTimestamp, long? FirstTokenTimestamp, long FinishedTimestamp)
{
    /// <summary>A timestamp of this record as wall-clock time, given one (timestamp, wall clock) pair read together.</summary>
    public static DateTimeOffset ToWallClock(long timestamp, long nowTimestamp, DateTimeOffset now) =>
        now - Stopwatch.GetElapsedTime(timestamp, nowTimestamp);
}
