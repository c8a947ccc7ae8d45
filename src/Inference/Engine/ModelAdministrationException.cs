namespace LlmServer.Inference.Engine;

public enum ModelAdministrationError
{
    /// <summary>The request itself is wrong (a bad path, an incompatible checkpoint).</summary>
    Invalid,
    /// <summary>No model or alias by that name.</summary>
    NotFound,
    /// <summary>Refused because of what is served now (an alias or adapter still depends on it).</summary>
    Conflict,
}

/// <summary>A load, unload or alias change the engine refused; nothing was changed.</summary>
public sealed class ModelAdministrationException(ModelAdministrationError error, string message, string? param = null)
    : Exception(message)
{
    public ModelAdministrationError Error { get; } = error;
    public string? Param { get; } = param;
}
