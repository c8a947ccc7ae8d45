using LlmServer.Storage;

namespace LlmServer.Files;

/// <summary>OpenAI's File object.</summary>
public sealed record FileObject(string Id, long Bytes, long CreatedAt, string Filename, string Purpose)
{
    public string Object => "file";
    // Deprecated in OpenAI's spec but still sent, and read by older SDKs: a stored file is processed.
    public string Status => "processed";

    public static FileObject From(StoredFile file) => new(file.Id, file.Bytes, file.CreatedAt, file.Filename, file.Purpose);
}

public sealed record FileList(IReadOnlyList<FileObject> Data, bool HasMore)
{
    public string Object => "list";
    public string? FirstId => Data.Count > 0 ? Data[0].Id : null;
    public string? LastId => Data.Count > 0 ? Data[^1].Id : null;
}

public sealed record FileDeleted(string Id)
{
    public string Object => "file";
    public bool Deleted => true;
}
