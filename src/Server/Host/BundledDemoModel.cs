namespace LlmServer.Host;

/// <summary>
/// The small demo model committed under models/demo (docs/demo-model.md), which <c>serve</c>
/// runs when no --model is given, so a fresh clone answers chat requests with no download.
/// </summary>
public static class BundledDemoModel
{
    public static readonly string RelativePath = Path.Combine("models", "demo");

    /// <summary>
    /// models/demo under the working directory (the repository root, where the README's command
    /// runs), else under the first ancestor of the application's own directory that has one
    /// (bin/Release/... inside the repository). Null when none does: the container image has no
    /// models/ and serves what is mounted at /models.
    /// </summary>
    public static string? Find()
    {
        if (IsModel(Path.Combine(Directory.GetCurrentDirectory(), RelativePath)))
        {
            return Path.Combine(Directory.GetCurrentDirectory(), RelativePath);
        }
        for (DirectoryInfo? directory = new(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, RelativePath);
            if (IsModel(candidate))
            {
                return candidate;
            }
        }
        return null;
    }

    private static bool IsModel(string directory) => File.Exists(Path.Combine(directory, "config.json"));
}
