using LlmServer.Inference.Engine;

namespace LlmServer.Commands;

/// <summary>The engine the offline eval modes drive directly: the serving engine itself, without the HTTP host.</summary>
internal static class OfflineEngine
{
    public static EngineClient Start(string modelDirectory, int threads) => new(new EngineOptions
    {
        ModelDirectory = modelDirectory,
        ServedModelName = "eval",
        KvCacheMemoryBytes = 256L << 20,
        CpuThreads = threads,
    });
}
