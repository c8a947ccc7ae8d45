using System.Diagnostics;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Observability;

/// <summary>
/// The server's own spans: the engine phases of each generation (children of the HTTP request's
/// span) and fine-tuning jobs. ASP.NET Core makes the HTTP spans themselves.
/// </summary>
public static class ServerTelemetry
{
    public const string SourceName = "LlmServer";
    public static readonly ActivitySource Source = new(SourceName);

    public const string QueueSpan = "engine.queue", PrefillSpan = "engine.prefill", DecodeSpan = "engine.decode";

    /// <summary>
    /// Records the queue, prefill and decode phases of one engine request as finished child spans of
    /// <paramref name="parent"/>. The engine thread only wrote timestamps; the spans are made here,
    /// with explicit start and end times, so no Activity ever crosses to the engine thread.
    /// </summary>
    public static void RecordEnginePhases(ActivityContext parent, RequestTimings timings, string engineRequestId, int choiceIndex)
    {
        if (parent == default || !Source.HasListeners())
        {
            return;
        }
        long nowTimestamp = Stopwatch.GetTimestamp();
        DateTimeOffset now = DateTimeOffset.UtcNow;
        DateTimeOffset At(long timestamp) => RequestTimings.ToWallClock(timestamp, nowTimestamp, now);

        long queueEnd = timings.FirstScheduledTimestamp ?? timings.FinishedTimestamp;
        long prefillEnd = timings.FirstTokenTimestamp ?? timings.FinishedTimestamp;
        Activity? previous = Activity.Current;
        try
        {
            Phase(QueueSpan, At(timings.ArrivalTimestamp), At(queueEnd));
            if (timings.FirstScheduledTimestamp is not null)
            {
                Phase(PrefillSpan, At(queueEnd), At(prefillEnd));
            }
            if (timings.FirstTokenTimestamp is not null)
            {
                Phase(DecodeSpan, At(prefillEnd), At(timings.FinishedTimestamp));
            }
        }
        finally
        {
            // Stopping a span with an explicit parent leaves Activity.Current unset; the request goes on under its own.
            Activity.Current = previous;
        }

        void Phase(string name, DateTimeOffset start, DateTimeOffset end)
        {
            using Activity? span = Source.StartActivity(name, ActivityKind.Internal, parent, startTime: start);
            if (span is null)
            {
                return;
            }
            span.SetTag("llmserver.engine_request_id", engineRequestId);
            span.SetTag("llmserver.choice_index", choiceIndex);
            // A zero duration would make Stop() take the current time instead.
            span.SetEndTime((end > start ? end : start.AddTicks(1)).UtcDateTime);
        }
    }
}
