namespace LlmServer.Training.Tests;

/// <summary>Finds the project's shared fixtures, which live outside the repository: CI clones the repository
/// with shared/ beside it (…/main and …/shared), so the tests look for shared/fixtures in every ancestor of
/// the test binaries.</summary>
internal static class TestFixtures
{
    // Lazy so that a missing shared/ fails only the tests that need it, each with the message below,
    // rather than as a TypeInitializationException.
    private static readonly Lazy<string> LocatedSharedDirectory = new(LocateSharedDirectory);

    /// <summary>The shared/ folder that holds fixtures/.</summary>
    public static string SharedDirectory => LocatedSharedDirectory.Value;

    public static string FixturesDirectory => Path.Combine(SharedDirectory, "fixtures");

    public static string TokenizerDirectory => RequireDirectory(Path.Combine(FixturesDirectory, "tokenizer"));

    public static string ModelDirectory(string name) => RequireDirectory(Path.Combine(FixturesDirectory, "models", name));

    private static string LocateSharedDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "fixtures")))
            {
                return candidate;
            }
        }
        throw new InvalidOperationException(
            $"no shared/fixtures folder in any ancestor of {AppContext.BaseDirectory}: the tests read fixtures from " +
            "the project's shared/ folder, which must sit beside the repository checkout (…/main next to …/shared)");
    }

    private static string RequireDirectory(string path) =>
        Directory.Exists(path)
            ? path
            : throw new InvalidOperationException($"fixture folder {path} does not exist (see {FixturesDirectory}/README.md)");
}
