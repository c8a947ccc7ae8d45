namespace LlmServer.Bench.Tests;

/// <summary>The project's shared/fixtures folder, found the way the other test projects find it.</summary>
internal static class TestFixtures
{
    private static readonly Lazy<string> LocatedFixturesDirectory = new(LocateFixturesDirectory);

    /// <summary>GPT-2's vocab.json and merges.txt.</summary>
    public static string TokenizerDirectory => Path.Combine(LocatedFixturesDirectory.Value, "tokenizer");

    /// <summary>The fixture checkpoints, each with the reference.json an independent implementation computed.</summary>
    public static string ModelsDirectory => Path.Combine(LocatedFixturesDirectory.Value, "models");

    private static string LocateFixturesDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "shared", "fixtures");
            if (Directory.Exists(candidate))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException(
            $"no shared/fixtures folder in any ancestor of {AppContext.BaseDirectory}: the tests read fixtures from " +
            "the project's shared/ folder, which must sit beside the repository checkout (…/main next to …/shared)");
    }
}
