using LlmServer.Training.FineTuning;

namespace LlmServer.Training.Tests.FineTuning;

/// <summary>Drives a run the way the engine thread does: one slice at a time until it completes.</summary>
internal static class RunDriver
{
    public static List<TrainingEvent> RunToCompletion(FineTuningRun run, int maxSlices = 100_000)
    {
        var events = new List<TrainingEvent>();
        for (int slice = 0; !run.IsCompleted; slice++)
        {
            Assert.True(slice < maxSlices, "the run does not finish");
            events.AddRange(run.RunSlice());
        }
        return events;
    }

    /// <summary>Runs slices until <paramref name="stop"/> matches an event; returns the events so far.</summary>
    public static List<TrainingEvent> RunUntil(FineTuningRun run, Func<TrainingEvent, bool> stop)
    {
        var events = new List<TrainingEvent>();
        while (!run.IsCompleted)
        {
            IReadOnlyList<TrainingEvent> produced = run.RunSlice();
            events.AddRange(produced);
            if (produced.Any(stop))
            {
                return events;
            }
        }
        throw new InvalidOperationException("the run completed before the awaited event");
    }
}
