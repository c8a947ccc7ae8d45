namespace LlmServer.Inference.Models;

/// <summary>
/// Writes a directory so that it appears whole or not at all: everything goes into a hidden
/// sibling that is renamed into place last, so a reader (the server loading a checkpoint, a job
/// resuming from one) never sees half of it, and a crash leaves only the hidden sibling.
/// </summary>
public static class WholeDirectory
{
    /// <param name="fill">Writes the contents into the staging directory it is given (already created).</param>
    public static void Write(string target, Action<string> fill)
    {
        target = Path.GetFullPath(target);
        string parent = Path.GetDirectoryName(target)!;
        string staging = Path.Combine(parent, $".{Path.GetFileName(target)}.partial-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            fill(staging);
            if (Directory.Exists(target))
            {
                // Replacing an earlier copy (a resumed run rewriting a step it had saved before).
                Directory.Delete(target, recursive: true);
            }
            Directory.Move(staging, target);
        }
        catch
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
            throw;
        }
    }
}
