namespace LlmServer.Inference.Engine;

/// <summary>
/// Work that shares the engine thread with serving, such as a fine-tuning run. The engine calls
/// <see cref="RunSlice"/> between serving steps, so a slice must be short (one optimizer step or
/// less): that bounds both the latency it adds to streams in flight and how late a cancel lands.
/// </summary>
public interface IEngineBackgroundWork : IDisposable
{
    /// <summary>Does the next piece of work; false once there is nothing left to do.</summary>
    bool RunSlice();
}

/// <summary>What background work may use on the engine thread while it is being created.</summary>
public interface IEngineModelAccess
{
    /// <summary>
    /// The full model a served name means, held for the work's lifetime (it is not freed under the
    /// work even if it is unloaded meanwhile). Throws <see cref="ModelAdministrationException"/>
    /// for an unknown name or an adapter.
    /// </summary>
    (Models.ICausalLanguageModel Model, ServedModel Served) UseFullModel(string name);
}
