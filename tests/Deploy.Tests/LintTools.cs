using System.Diagnostics;

namespace LlmServer.Deploy.Tests;

/// <summary>
/// yamllint and docker-compose, which this machine and CI may not have installed. Taken from PATH
/// when there (docker compose v2 first); otherwise fetch-lint-tools.sh downloads the Debian
/// packages without root into obj/lint-tools and they run from there. If neither works the tests
/// fail, saying what was tried: a check that silently skips is no check.
/// </summary>
internal sealed class LintTools
{
    private static readonly Lazy<LintTools> Located = new(Locate);

    private readonly IReadOnlyList<string> _yamllint;
    private readonly IReadOnlyList<string> _compose;
    private readonly IReadOnlyDictionary<string, string> _environment;

    private LintTools(IReadOnlyList<string> yamllint, IReadOnlyList<string> compose, IReadOnlyDictionary<string, string> environment)
    {
        _yamllint = yamllint;
        _compose = compose;
        _environment = environment;
    }

    public static LintTools Instance => Located.Value;

    public static string CacheDirectory => RepositoryFiles.PathOf(Path.Combine("tests", "Deploy.Tests", "obj", "lint-tools"));

    public ProcessResult YamlLint(params string[] args) => Run(_yamllint, args, null);

    public ProcessResult Compose(IReadOnlyDictionary<string, string?> environment, params string[] args) => Run(_compose, args, environment);

    private static LintTools Locate()
    {
        var log = new List<string>();
        IReadOnlyList<string>? yamllint = Works(["yamllint", "--version"], log) ? ["yamllint"] : null;
        IReadOnlyList<string>? compose = Works(["docker", "compose", "version"], log) ? ["docker", "compose"]
            : Works(["docker-compose", "version"], log) ? ["docker-compose"] : null;
        if (yamllint is not null && compose is not null)
        {
            return new LintTools(yamllint, compose, new Dictionary<string, string>());
        }

        string root = CacheDirectory;
        string bin = Path.Combine(root, "usr", "bin");
        if (!File.Exists(Path.Combine(bin, "yamllint")) || !File.Exists(Path.Combine(bin, "docker-compose")))
        {
            ProcessResult fetch = ProcessResult.Run(["bash", RepositoryFiles.PathOf("tests/Deploy.Tests/fetch-lint-tools.sh"), root], null, TimeSpan.FromMinutes(3));
            log.Add($"fetch-lint-tools.sh exited {fetch.ExitCode}: {fetch.Output.Trim()}");
        }
        var environment = new Dictionary<string, string> { ["PYTHONPATH"] = Path.Combine(root, "usr", "lib", "python3", "dist-packages") };
        yamllint ??= ["/usr/bin/python3", Path.Combine(bin, "yamllint")];
        compose ??= ["/usr/bin/python3", Path.Combine(bin, "docker-compose")];
        var tools = new LintTools(yamllint, compose, environment);
        ProcessResult yamllintVersion = tools.YamlLint("--version");
        ProcessResult composeVersion = tools.Compose(new Dictionary<string, string?>(), "version");
        if (yamllintVersion.ExitCode != 0 || composeVersion.ExitCode != 0)
        {
            throw new InvalidOperationException(
                "yamllint and docker-compose are needed to check the deployment files and could not be obtained. " +
                "Tried PATH (yamllint, docker compose, docker-compose), then downloading the Debian packages with " +
                $"tests/Deploy.Tests/fetch-lint-tools.sh into {root}. Install them (apt-get install yamllint docker-compose, " +
                $"or pip install yamllint) or fix that download.\n{string.Join('\n', log)}\n" +
                $"yamllint: {yamllintVersion.Output.Trim()}\ndocker-compose: {composeVersion.Output.Trim()}");
        }
        return tools;
    }

    private static bool Works(IReadOnlyList<string> command, List<string> log)
    {
        try
        {
            ProcessResult result = ProcessResult.Run(command, null, TimeSpan.FromSeconds(20));
            log.Add($"{string.Join(' ', command)}: exit {result.ExitCode}");
            return result.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            log.Add($"{command[0]}: not on PATH");
            return false;
        }
    }

    private ProcessResult Run(IReadOnlyList<string> command, string[] args, IReadOnlyDictionary<string, string?>? environment)
    {
        var merged = new Dictionary<string, string?>();
        foreach ((string key, string value) in _environment)
        {
            merged[key] = value;
        }
        foreach ((string key, string? value) in environment ?? new Dictionary<string, string?>())
        {
            merged[key] = value;
        }
        return ProcessResult.Run([.. command, .. args], merged, TimeSpan.FromSeconds(60));
    }
}

internal sealed record ProcessResult(int ExitCode, string Output)
{
    /// <summary>Runs a command in the repository root; a null value in the environment removes that variable.</summary>
    public static ProcessResult Run(IReadOnlyList<string> command, IReadOnlyDictionary<string, string?>? environment, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(command[0])
        {
            WorkingDirectory = RepositoryFiles.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string arg in command.Skip(1))
        {
            start.ArgumentList.Add(arg);
        }
        foreach ((string key, string? value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }
        using Process process = Process.Start(start)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            return new ProcessResult(-1, $"{string.Join(' ', command)} timed out after {timeout}");
        }
        return new ProcessResult(process.ExitCode, output.Result + error.Result);
    }
}
