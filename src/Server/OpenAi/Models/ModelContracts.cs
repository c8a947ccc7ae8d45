namespace LlmServer.OpenAi.Models;

public sealed record ModelList(IReadOnlyList<ModelCard> Data)
{
    public string Object => "list";
}

/// <summary>
/// OpenAI's Model object, plus vLLM's max_model_len, root (the served model a name resolves to:
/// itself, or an alias's target) and parent (the base an adapter runs on), and alias_of for a name
/// that points at another model. <see cref="Path"/>, where the weights were read from, is shown on
/// the admin API only: server paths are not for every holder of the inference key.
/// </summary>
public sealed record ModelCard(string Id, long Created, string OwnedBy, int MaxModelLen, string Root, string? Parent = null, string? AliasOf = null)
{
    public string Object => "model";

    public string? Path { get; init; }
}
