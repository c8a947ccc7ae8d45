using System.Text.RegularExpressions;
using LlmServer.Host;

namespace LlmServer.Deploy.Tests;

/// <summary>
/// The examples that show serving a published model agree with the server and with each other: every
/// setting and flag they pass is one <c>serve --help</c> lists, and the directory Compose and
/// Kubernetes hand to <c>--model</c> is the one their download command writes, under the mount.
/// </summary>
public sealed partial class ServingExampleTests
{
    private static readonly HashSet<string> ServeFlags = [.. ServeCommandLine.Flags.Select(f => f.Name), "--help"];

    // Configuration keys are case-insensitive, as the server binds them.
    private static readonly HashSet<string> ServeSettings =
        new(ServeCommandLine.Flags.Select(f => f.ConfigurationKey.Split(':')[1]), StringComparer.OrdinalIgnoreCase);

    private static IEnumerable<string> FilesShowingTheServer() =>
        [
            "Dockerfile",
            ".env.example",
            "README.md",
            .. Directory.EnumerateFiles(RepositoryFiles.PathOf("docs"), "*.md").Select(f => Path.GetRelativePath(RepositoryFiles.Root, f)),
            .. RepositoryFiles.YamlFiles(),
        ];

    [Fact]
    public void Every_LLMSERVER_Server_setting_the_files_name_is_a_serve_flag()
    {
        var unknown = new List<string>();
        foreach (string file in FilesShowingTheServer())
        {
            foreach (Match setting in ServerSetting().Matches(RepositoryFiles.Read(file)))
            {
                // LLMSERVER_Server__X is how the docs write "any flag".
                if (setting.Groups["name"].Value != "X" && !ServeSettings.Contains(setting.Groups["name"].Value))
                {
                    unknown.Add($"{file}: {setting.Value}");
                }
            }
        }
        Assert.True(unknown.Count == 0, "settings serve --help does not list:\n" + string.Join('\n', unknown));
    }

    [Fact]
    public void Every_serve_command_line_the_files_show_uses_serve_flags()
    {
        var commands = new List<string>();
        var unknown = new List<string>();
        foreach (string file in FilesShowingTheServer())
        {
            foreach (string command in CommandLines(RepositoryFiles.Read(file)))
            {
                // What serve receives: after "-- serve" for dotnet run, after the image name for docker run.
                Match serve = ServeArguments().Match(command);
                if (!serve.Success)
                {
                    continue;
                }
                commands.Add(command);
                foreach (Match flag in Flag().Matches(serve.Groups["args"].Value))
                {
                    if (!ServeFlags.Contains(flag.Value))
                    {
                        unknown.Add($"{file}: {flag.Value} in: {command}");
                    }
                }
            }
        }
        Assert.Contains(commands, c => c.StartsWith("docker run", StringComparison.Ordinal) && c.Contains("--model /models/", StringComparison.Ordinal));
        Assert.True(unknown.Count == 0, "flags serve --help does not list:\n" + string.Join('\n', unknown));
    }

    [Fact]
    public void Compose_serves_the_directory_its_download_command_writes()
    {
        object server = RepositoryFiles.At(RepositoryFiles.ReadYaml("docker-compose.yml"), "services", "llmserver");
        string model = WithDefaults(RepositoryFiles.Text(server, "environment", "LLMSERVER_Server__Model"));
        string modelsMount = Assert.Single(
            Assert.IsType<List<object>>(RepositoryFiles.At(server, "volumes")).Cast<string>().Select(WithDefaults),
            v => v.Split(':')[1] == "/models");
        string hostModels = modelsMount.Split(':')[0];
        Assert.EndsWith(":ro", modelsMount);
        Assert.StartsWith("/models/", model);
        string hostDirectory = hostModels + model["/models".Length..];

        // The default model is the one .env.example names, and every download command shown for
        // Compose writes exactly that directory, named after the repository it fetches.
        string envModel = Regex.Match(RepositoryFiles.Read(".env.example"), @"^LLMSERVER_MODEL=(?<name>.+)$", RegexOptions.Multiline).Groups["name"].Value.Trim();
        Assert.Equal(model, $"/models/{envModel}");
        foreach (string file in new[] { "docker-compose.yml", ".env.example", "docs/operations.md" })
        {
            MatchCollection downloads = Download().Matches(RepositoryFiles.Read(file));
            Assert.True(downloads.Count > 0, $"{file} shows no huggingface-cli download");
            Assert.Contains(downloads, d => d.Groups["dir"].Value == hostDirectory);
            foreach (Match download in downloads)
            {
                Assert.Equal(download.Groups["repo"].Value.Split('/')[1], Path.GetFileName(download.Groups["dir"].Value));
            }
        }
    }

    [Fact]
    public void Kubernetes_serves_a_directory_under_the_models_mount()
    {
        string model = RepositoryFiles.Text(
            Assert.Single(RepositoryFiles.ReadYamlDocuments("deploy/k8s/configmap.yaml")), "data", "LLMSERVER_Server__Model");
        object deployment = Assert.Single(RepositoryFiles.ReadYamlDocuments("deploy/k8s/deployment.yaml"), d => RepositoryFiles.Text(d, "kind") == "Deployment");
        var mounts = Assert.IsType<List<object>>(RepositoryFiles.At(deployment, "spec", "template", "spec", "containers", 0, "volumeMounts"));
        object modelsMount = Assert.Single(mounts, m => RepositoryFiles.Text(m, "name") == "models");
        Assert.StartsWith(RepositoryFiles.Text(modelsMount, "mountPath") + "/", model);
        Assert.Equal("true", RepositoryFiles.Text(modelsMount, "readOnly"));
    }

    /// <summary>Compose's ${NAME:-default} with every variable unset.</summary>
    private static string WithDefaults(string value) => ComposeVariable().Replace(value, m => m.Groups["default"].Value);

    /// <summary>Shell commands in the text, continuation lines joined, leading comment marks and prompts dropped.</summary>
    private static IEnumerable<string> CommandLines(string text)
    {
        string pending = "";
        foreach (string raw in text.ReplaceLineEndings("\n").Split('\n'))
        {
            string line = raw.TrimStart().TrimStart('#').Trim();
            if (line.EndsWith('\\'))
            {
                pending += line[..^1] + " ";
                continue;
            }
            yield return pending + line;
            pending = "";
        }
    }

    [GeneratedRegex(@"LLMSERVER_Server__(?<name>[A-Za-z0-9]+)")]
    private static partial Regex ServerSetting();

    [GeneratedRegex(@"(?:-- serve|llmserver\.dll serve|^docker run\b.*?\sllmserver:[\w.-]+)(?<args>[^#&|`]*)")]
    private static partial Regex ServeArguments();

    [GeneratedRegex(@"(?<=^|\s)--[a-z][a-z-]*")]
    private static partial Regex Flag();

    [GeneratedRegex(@"huggingface-cli download (?<repo>[\w.-]+/[\w.-]+)\b.*?--local-dir (?<dir>\S+)")]
    private static partial Regex Download();

    [GeneratedRegex(@"\$\{\w+:-(?<default>[^}]*)\}")]
    private static partial Regex ComposeVariable();
}
