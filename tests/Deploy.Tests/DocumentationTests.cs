using System.Text.RegularExpressions;
using LlmServer.Host;

namespace LlmServer.Deploy.Tests;

/// <summary>
/// README.md and docs/ say what the code does: the options table is the flags' own, the test
/// command is the one CI runs, and every link and every repository path they name exists, so a
/// file moved in a refactor cannot leave the docs pointing at nothing.
/// </summary>
public sealed partial class DocumentationTests
{
    private static IEnumerable<string> MarkdownFiles() =>
        [
            "README.md",
            .. Directory.EnumerateFiles(RepositoryFiles.PathOf("docs"), "*.md")
                .Select(f => Path.GetRelativePath(RepositoryFiles.Root, f))
                .Order(StringComparer.Ordinal),
        ];

    [Fact]
    public void The_options_table_is_the_one_the_flags_generate()
    {
        string documented = RepositoryFiles.Read("docs/configuration.md").ReplaceLineEndings("\n");
        string generated = ServeCommandLine.MarkdownTable();
        Assert.True(documented.Contains(generated, StringComparison.Ordinal),
            $"docs/configuration.md's options table differs from the serve flags; replace it with:\n{generated}");
    }

    [Fact]
    public void The_readme_test_command_is_the_one_ci_runs()
    {
        // The command as a person types it: without the redirection and pipe .ci/run adds to read the result.
        Match ci = Regex.Match(RepositoryFiles.Read(".ci/run"), @"^dotnet test .*?(?=\s+(?:\d?>|\|)|$)", RegexOptions.Multiline);
        Assert.True(ci.Success, ".ci/run runs no dotnet test command");
        Assert.Contains(ci.Value, RepositoryFiles.Read("README.md"));
    }

    [Fact]
    public void Every_relative_link_in_the_docs_reaches_a_file_and_heading_that_exist()
    {
        var broken = new List<string>();
        foreach (string file in MarkdownFiles())
        {
            string directory = Path.GetDirectoryName(RepositoryFiles.PathOf(file))!;
            foreach (Match link in MarkdownLink().Matches(RepositoryFiles.Read(file)))
            {
                string target = link.Groups["target"].Value;
                if (target.Contains("://", StringComparison.Ordinal) || target.StartsWith("mailto:", StringComparison.Ordinal))
                {
                    continue;
                }
                string[] parts = target.Split('#', 2);
                string path = parts[0].Length == 0 ? RepositoryFiles.PathOf(file) : Path.GetFullPath(Path.Combine(directory, parts[0]));
                if (!File.Exists(path) && !Directory.Exists(path))
                {
                    broken.Add($"{file}: {target} (no such file)");
                }
                else if (parts.Length == 2 && File.Exists(path) && !HeadingAnchors(File.ReadAllText(path)).Contains(parts[1]))
                {
                    broken.Add($"{file}: {target} (no such heading)");
                }
            }
        }
        Assert.True(broken.Count == 0, "broken links:\n" + string.Join('\n', broken));
    }

    [Fact]
    public void Every_repository_path_the_docs_name_exists()
    {
        var missing = new List<string>();
        foreach (string file in MarkdownFiles())
        {
            foreach (Match named in RepositoryPath().Matches(RepositoryFiles.Read(file)))
            {
                string path = named.Groups["path"].Value;
                // Build outputs exist only after a build; patterns and placeholders name no one file.
                if (path.Contains("/bin/", StringComparison.Ordinal) || path.Contains("/obj/", StringComparison.Ordinal)
                    || path.IndexOfAny(['*', '{', '<']) >= 0)
                {
                    continue;
                }
                string full = RepositoryFiles.PathOf(path.TrimEnd('/'));
                if (!File.Exists(full) && !Directory.Exists(full))
                {
                    missing.Add($"{file}: {path}");
                }
            }
        }
        Assert.True(missing.Count == 0, "paths the docs name that do not exist:\n" + string.Join('\n', missing));
    }

    /// <summary>GitHub's anchors: lower case, punctuation dropped, spaces to hyphens.</summary>
    private static HashSet<string> HeadingAnchors(string markdown) =>
        Heading().Matches(markdown)
            .Select(m => Regex.Replace(m.Groups["title"].Value.Trim().ToLowerInvariant(), @"[^\p{L}\p{N} _-]", "").Replace(' ', '-'))
            .ToHashSet(StringComparer.Ordinal);

    [GeneratedRegex(@"\]\((?<target>[^)\s]+)\)")]
    private static partial Regex MarkdownLink();

    [GeneratedRegex(@"^#{1,6} (?<title>.+)$", RegexOptions.Multiline)]
    private static partial Regex Heading();

    // A path in backticks that starts at a top-level folder of the repository.
    [GeneratedRegex(@"`(?<path>(?:src|tests|deploy|build|docs|models)/[^`\s]*)`")]
    private static partial Regex RepositoryPath();
}
