using System.Security.Cryptography;
using Microsoft.Data.Sqlite;

namespace LlmServer.Storage;

/// <summary>
/// The durable state of files and fine-tuning: rows in one SQLite database under the data
/// directory (jobs in the same database, through <see cref="JobStore"/>), file contents beside it in files/. A file's bytes are written to a temporary name
/// and renamed into place before its row is inserted, so a listed file always has all its bytes,
/// and a crash mid-upload leaves only a temporary file that the next start removes.
/// </summary>
public sealed class FineTuningStore : IDisposable
{
    private const string TemporaryPrefix = ".upload-";

    /// <summary>The SQLite database's file name inside the data directory.</summary>
    public const string DatabaseFileName = "llmserver.db";
    private readonly string _connectionString;
    private readonly string _filesDirectory;

    public FineTuningStore(string dataDirectory)
    {
        string root = Path.GetFullPath(dataDirectory);
        _filesDirectory = Path.Combine(root, "files");
        Directory.CreateDirectory(_filesDirectory);
        foreach (string leftover in Directory.EnumerateFiles(_filesDirectory, TemporaryPrefix + "*"))
        {
            File.Delete(leftover);
        }
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(root, DatabaseFileName),
            Mode = SqliteOpenMode.ReadWriteCreate,
            // SQLite checks REFERENCES only when asked, per connection.
            ForeignKeys = true,
        }.ToString();
        using SqliteConnection connection = Open();
        Execute(connection, """
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS files (
                id TEXT PRIMARY KEY,
                filename TEXT NOT NULL,
                purpose TEXT NOT NULL,
                bytes INTEGER NOT NULL,
                created_at INTEGER NOT NULL
            );
            """);
    }

    /// <summary>
    /// At shutdown: folds the write-ahead log into the database file and closes the pooled
    /// connections, so the data directory is one consistent llmserver.db that any SQLite reads.
    /// </summary>
    public void Dispose()
    {
        using (SqliteConnection connection = Open())
        {
            Execute(connection, "PRAGMA wal_checkpoint(TRUNCATE);");
        }
        SqliteConnection.ClearAllPools();
    }

    /// <summary>A new temporary path in files/ to stream an upload into before it is kept or dropped.</summary>
    public string NewUploadPath() => Path.Combine(_filesDirectory, TemporaryPrefix + Guid.NewGuid().ToString("N"));

    /// <summary>Moves a finished upload into place and records it.</summary>
    public StoredFile KeepUpload(string uploadPath, string filename, string purpose)
    {
        var file = new StoredFile(NewId("file-"), filename, purpose, new FileInfo(uploadPath).Length, DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        string contentPath = ContentPath(file.Id);
        File.Move(uploadPath, contentPath);
        try
        {
            using SqliteConnection connection = Open();
            using SqliteCommand insert = connection.CreateCommand();
            insert.CommandText = "INSERT INTO files (id, filename, purpose, bytes, created_at) VALUES ($id, $filename, $purpose, $bytes, $created_at)";
            insert.Parameters.AddWithValue("$id", file.Id);
            insert.Parameters.AddWithValue("$filename", file.Filename);
            insert.Parameters.AddWithValue("$purpose", file.Purpose);
            insert.Parameters.AddWithValue("$bytes", file.Bytes);
            insert.Parameters.AddWithValue("$created_at", file.CreatedAt);
            insert.ExecuteNonQuery();
        }
        catch
        {
            File.Delete(contentPath);
            throw;
        }
        return file;
    }

    /// <summary>Files newest first, as OpenAI lists them; <paramref name="after"/> is the last id of the previous page.</summary>
    public (IReadOnlyList<StoredFile> Page, bool HasMore) ListFiles(string? purpose, int limit, string? after)
    {
        using SqliteConnection connection = Open();
        using SqliteCommand query = connection.CreateCommand();
        // Newest first; ties in the second-resolution timestamp broken by insertion order.
        query.CommandText = """
            SELECT id, filename, purpose, bytes, created_at FROM files
            WHERE ($purpose IS NULL OR purpose = $purpose)
              AND ($after IS NULL OR rowid < (SELECT rowid FROM files WHERE id = $after))
            ORDER BY rowid DESC LIMIT $limit
            """;
        query.Parameters.AddWithValue("$purpose", (object?)purpose ?? DBNull.Value);
        query.Parameters.AddWithValue("$after", (object?)after ?? DBNull.Value);
        query.Parameters.AddWithValue("$limit", limit + 1);
        var files = new List<StoredFile>();
        using SqliteDataReader reader = query.ExecuteReader();
        while (reader.Read())
        {
            files.Add(Read(reader));
        }
        bool hasMore = files.Count > limit;
        return (hasMore ? files[..limit] : files, hasMore);
    }

    public StoredFile? FindFile(string id)
    {
        using SqliteConnection connection = Open();
        using SqliteCommand query = connection.CreateCommand();
        query.CommandText = "SELECT id, filename, purpose, bytes, created_at FROM files WHERE id = $id";
        query.Parameters.AddWithValue("$id", id);
        using SqliteDataReader reader = query.ExecuteReader();
        return reader.Read() ? Read(reader) : null;
    }

    /// <summary>The path of a stored file's bytes.</summary>
    public string ContentPath(string id) => Path.Combine(_filesDirectory, id + ".jsonl");

    /// <summary>Forgets a file and removes its bytes; false if there was no such file.</summary>
    public bool DeleteFile(string id)
    {
        using SqliteConnection connection = Open();
        using SqliteCommand delete = connection.CreateCommand();
        delete.CommandText = "DELETE FROM files WHERE id = $id";
        delete.Parameters.AddWithValue("$id", id);
        if (delete.ExecuteNonQuery() == 0)
        {
            return false;
        }
        File.Delete(ContentPath(id));
        return true;
    }

    private static StoredFile Read(SqliteDataReader reader) =>
        new(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt64(3), reader.GetInt64(4));

    /// <summary>A new connection to the database; <see cref="JobStore"/> keeps its tables in the same one.</summary>
    internal SqliteConnection Open()
    {
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    internal static void Execute(SqliteConnection connection, string sql)
    {
        using SqliteCommand command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    // OpenAI's ids: a prefix and 24 random letters and digits.
    internal static string NewId(string prefix)
    {
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        return prefix + RandomNumberGenerator.GetString(alphabet, 24);
    }
}
