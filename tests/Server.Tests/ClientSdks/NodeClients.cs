using System.Diagnostics;
using System.Text;
using System.Text.Json;

namespace LlmServer.Tests.ClientSdks;

/// <summary>
/// tests/Clients, the npm project of client scenarios: where it is, its dependencies installed once with npm ci
/// (kept when node_modules already holds every locked package at its locked version), and a scenario run.
/// </summary>
internal static class NodeClients
{
    private static readonly Lazy<Task> Installed = new(InstallAsync);

    public static string Directory { get; } = Locate();

    public static Task EnsureInstalledAsync() => Installed.Value;

    public static async Task<NodeRun> RunAsync(string scenario, params string[] arguments) =>
        await RunProcessAsync("node", [$"{scenario}.mjs", .. arguments], TimeSpan.FromMinutes(3));

    private static async Task InstallAsync()
    {
        if (IsInstalled())
        {
            return;
        }

        NodeRun install = await RunProcessAsync("npm", ["ci", "--no-audit", "--no-fund"], TimeSpan.FromMinutes(5));
        if (install.ExitCode != 0 || !IsInstalled())
        {
            throw new InvalidOperationException($"npm ci in {Directory} failed (exit {install.ExitCode}):\n{install.Output}");
        }
    }

    // npm ci deletes node_modules and fetches everything again; when each locked package is already there at its
    // locked version the install would change nothing.
    private static bool IsInstalled()
    {
        using JsonDocument lockFile = JsonDocument.Parse(File.ReadAllText(Path.Combine(Directory, "package-lock.json")));
        foreach (JsonProperty package in lockFile.RootElement.GetProperty("packages").EnumerateObject())
        {
            if (package.Name.Length == 0)
            {
                continue;
            }

            string manifest = Path.Combine(Directory, package.Name, "package.json");
            if (!File.Exists(manifest))
            {
                return false;
            }

            using JsonDocument installed = JsonDocument.Parse(File.ReadAllText(manifest));
            if (installed.RootElement.GetProperty("version").GetString() != package.Value.GetProperty("version").GetString())
            {
                return false;
            }
        }

        return true;
    }

    private static async Task<NodeRun> RunProcessAsync(string program, IReadOnlyList<string> arguments, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(program)
        {
            WorkingDirectory = Directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(start)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException(
                $"'{program}' could not be started ({e.Message}): the client SDK tests need Node.js 20 or later and npm on PATH", e);
        }

        using (process)
        {
            Task<string> stdout = process.StandardOutput.ReadToEndAsync();
            Task<string> stderr = process.StandardError.ReadToEndAsync();
            using var deadline = new CancellationTokenSource(timeout);
            try
            {
                await process.WaitForExitAsync(deadline.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
                return new NodeRun(-1, $"{program} {string.Join(' ', arguments)} ran past {timeout}\n{await stdout}\n{await stderr}");
            }

            return new NodeRun(process.ExitCode, new StringBuilder().Append(await stdout).Append(await stderr).ToString());
        }
    }

    private static string Locate()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, "tests", "Clients");
            if (File.Exists(Path.Combine(candidate, "package-lock.json")))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"no tests/Clients/package-lock.json in any ancestor of {AppContext.BaseDirectory}");
    }
}

internal sealed record NodeRun(int ExitCode, string Output);
