using System.Text.Json.Serialization;

namespace LlmServer.Contracts;

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

/// <summary>POST /admin/models/load: serve the model or PEFT adapter at <c>path</c> as <c>name</c>.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record LoadModelRequest(string? Path, string? Name, string? Base);

/// <summary>POST /admin/models/unload (<c>model</c>; <c>name</c> is accepted too).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record UnloadModelRequest(string? Model, string? Name);

/// <summary>POST /admin/aliases: point <c>alias</c> at <c>model</c> (a served model or a fine-tuning checkpoint).</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record SetAliasRequest(string? Alias, string? Model);

public sealed record AliasObject(string Alias, string Model)
{
    public string Object => "alias";
}

public sealed record AliasList(IReadOnlyList<AliasObject> Data)
{
    public string Object => "list";
}

public sealed record ModelUnloaded(string Id)
{
    public string Object => "model";
    public bool Deleted => true;
}

public sealed record AliasDeleted(string Alias)
{
    public string Object => "alias";
    public bool Deleted => true;
}
