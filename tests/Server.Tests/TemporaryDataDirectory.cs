namespace LlmServer.Tests;

/// <summary>A --data-dir of its own for one test, removed afterwards (SQLite's pooled handles closed first).</summary>
public sealed class TemporaryDataDirectory(string purpose) : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"llmserver-{purpose}-{Guid.NewGuid():N}");

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        if (Directory.Exists(Path))
        {
            Directory.Delete(Path, recursive: true);
        }
    }
}
