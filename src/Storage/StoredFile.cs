namespace LlmServer.Storage;

/// <summary>An uploaded file as the store records it; its bytes live in the data directory's files/ folder.</summary>
public sealed record StoredFile(string Id, string Filename, string Purpose, long Bytes, long CreatedAt);
