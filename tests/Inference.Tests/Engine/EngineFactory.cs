using LlmServer.Inference.Engine;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Tests.Engine;

internal static class EngineFactory
{
    /// <summary>An engine over a fixture model with a small cache, so tests stay light.</summary>
    public static EngineClient Start(string fixtureModel, long kvCacheBytes = 16L << 20, SchedulerOptions? scheduler = null) =>
        StartFromDirectory(TestFixtures.ModelDirectory(fixtureModel), kvCacheBytes, scheduler);

    public static EngineClient StartFromDirectory(string directory, long kvCacheBytes = 16L << 20, SchedulerOptions? scheduler = null) =>
        new(new EngineOptions
        {
            ModelDirectory = directory,
            ServedModelName = Path.GetFileName(directory),
            KvCacheMemoryBytes = kvCacheBytes,
            Scheduler = scheduler ?? new SchedulerOptions(),
        });
}
