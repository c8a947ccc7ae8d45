using System.Text.Json;
using System.Text.RegularExpressions;

namespace LlmServer.OpenAi.Responses;

/// <summary>
/// Stored responses under --data-dir/responses, one JSON file each, so a conversation continued through
/// previous_response_id survives a restart. A file is written beside its place and renamed over it after reaching
/// the disk: a crash leaves the old file or the new one, never half of one.
/// </summary>
public sealed partial class ResponseStore(string dataDir)
{
    private readonly string _directory = Path.Combine(dataDir, "responses");

    public void Save(StoredResponse stored)
    {
        Directory.CreateDirectory(_directory);
        string path = PathOf(stored.Response.Id);
        string partial = $"{path}.{Guid.NewGuid():N}.partial";
        using (var file = new FileStream(partial, FileMode.CreateNew, FileAccess.Write, FileShare.None))
        {
            JsonSerializer.Serialize(file, stored, OpenAiJson.Options);
            file.Flush(flushToDisk: true);
        }
        File.Move(partial, path, overwrite: true);
    }

    /// <summary>Null for an id that is not a stored response (also one not in this server's id shape, which can name no file).</summary>
    public StoredResponse? Find(string id)
    {
        if (!IdShape().IsMatch(id) || !File.Exists(PathOf(id)))
        {
            return null;
        }
        using FileStream file = File.OpenRead(PathOf(id));
        return JsonSerializer.Deserialize<StoredResponse>(file, OpenAiJson.Options);
    }

    public bool Delete(string id)
    {
        if (!IdShape().IsMatch(id) || !File.Exists(PathOf(id)))
        {
            return false;
        }
        File.Delete(PathOf(id));
        return true;
    }

    public static string NewId() => $"resp_{Guid.NewGuid():N}";

    private string PathOf(string id) => Path.Combine(_directory, $"{id}.json");

    [GeneratedRegex("^resp_[0-9a-f]{32}$")]
    private static partial Regex IdShape();
}
