using System.Text.Json.Serialization;

namespace LlmServer.Admin;

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
