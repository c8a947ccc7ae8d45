using System.Diagnostics;
using System.Threading.Channels;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>Messages from request threads to the engine thread.</summary>
internal abstract record EngineCommand
{
    /// <summary>Answers the command without running it, because the engine has stopped; safe from any thread.</summary>
    public abstract void Refuse();

    public sealed record Add(string RequestId, IReadOnlyList<int> PromptTokenIds, SamplingParameters Sampling,
        ChannelWriter<GenerationEvent> Events, int? WeightsId) : EngineCommand
    {
        public long ArrivalTimestamp { get; } = Stopwatch.GetTimestamp();

        public override void Refuse() => Answer(FinishReason.Aborted, "the server is shutting down");

        /// <summary>Ends the request before it started: one final event with the reason, and nobody else is affected.</summary>
        public void Answer(FinishReason reason, string message)
        {
            var timings = new RequestTimings(ArrivalTimestamp);
            timings.MarkFinished(Stopwatch.GetTimestamp());
            Events.TryWrite(new GenerationEvent
            {
                Timings = timings,
                RequestId = RequestId,
                TextDelta = "",
                Tokens = [],
                FinishReason = reason,
                ErrorMessage = message,
                PromptTokenCount = PromptTokenIds.Count,
                OutputTokenCount = 0,
            });
            Events.TryComplete();
        }
    }

    public sealed record Abort(string RequestId) : EngineCommand
    {
        public override void Refuse()
        {
        }
    }

    /// <summary>
    /// Runs an action on the engine thread between steps (model loads, unloads, alias changes);
    /// it gets no registry when the engine has stopped and must fail its caller then.
    /// </summary>
    public sealed record Invoke(Action<ModelRegistry?> Action) : EngineCommand
    {
        public override void Refuse() => Action(null);
    }

    public sealed record StartBackground(Func<IEngineModelAccess, IEngineBackgroundWork> Create, TaskCompletionSource Done,
        CancellationToken Cancellation) : EngineCommand
    {
        public override void Refuse() => Done.TrySetCanceled();
    }
}
