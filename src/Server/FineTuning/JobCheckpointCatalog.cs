using LlmServer.Admin;
using LlmServer.Storage;

namespace LlmServer.FineTuning;

/// <summary>Fine-tuning checkpoints by their ft:...:ckpt-step-N names, so an alias can point at one.</summary>
public sealed class JobCheckpointCatalog(JobStore jobs) : ICheckpointCatalog
{
    public string? DirectoryOf(string modelName) =>
        jobs.GetCheckpointByName(modelName) is { } checkpoint && Directory.Exists(checkpoint.Path) ? checkpoint.Path : null;
}
