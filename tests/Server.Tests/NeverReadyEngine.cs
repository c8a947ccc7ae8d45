using LlmServer.Inference.Engine;

namespace LlmServer.Tests;

/// <summary>An engine that never finishes loading: the server as it is before its model is ready.</summary>
internal sealed class NeverReadyEngine : IEngineClient
{
    public Task<ServedModel> Ready { get; } = new TaskCompletionSource<ServedModel>().Task;
    public EngineStatistics Statistics => EngineStatistics.Idle;
    public ServedModelCatalog Models => ServedModelCatalog.Empty;
    public EngineAdmission? TryAdmit(int requests) => new(() => { });
    public int AdmissionLimit => int.MaxValue;
    public IAsyncEnumerable<GenerationEvent> GenerateAsync(EngineSubmission submission, CancellationToken cancellationToken = default) =>
        throw new InvalidOperationException("not loaded");
}
