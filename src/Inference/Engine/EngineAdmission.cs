namespace LlmServer.Inference.Engine;

/// <summary>Room held in the engine's bounded queue; disposing gives it back (once).</summary>
public sealed class EngineAdmission(Action release) : IDisposable
{
    private Action? _release = release;

    public void Dispose() => Interlocked.Exchange(ref _release, null)?.Invoke();
}
