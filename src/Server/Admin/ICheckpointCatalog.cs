namespace LlmServer.Admin;

/// <summary>Finds the directory of a fine-tuning result or checkpoint by its ft: name, so it can be served on demand.</summary>
public interface ICheckpointCatalog
{
    string? DirectoryOf(string modelName);
}
