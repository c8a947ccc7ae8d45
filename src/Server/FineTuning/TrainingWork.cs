using System.Threading.Channels;
using LlmServer.Inference.Engine;
using LlmServer.Training.FineTuning;

namespace LlmServer.FineTuning;

/// <summary>
/// A fine-tuning run as engine background work: each slice is at most one micro-batch or one
/// optimizer step, and whatever it finished is handed to the job worker through a channel, so
/// the engine thread never waits on the database.
/// </summary>
internal sealed class TrainingWork(FineTuningRun run, ChannelWriter<TrainingEvent> events) : IEngineBackgroundWork
{
    public bool RunSlice()
    {
        foreach (TrainingEvent finished in run.RunSlice())
        {
            events.TryWrite(finished);
        }
        return !run.IsCompleted;
    }

    public void Dispose()
    {
        run.Dispose();
        events.TryComplete();
    }
}
