using System.Diagnostics;

namespace LlmServer.Playground.Tests;

/// <summary>
/// Debian's chromium, which Playwright drives instead of a browser of its own (nothing outside this
/// network is reachable, so Playwright's downloads are not an option). When it is missing the tests
/// install it with apt-get, as Deploy.Tests fetches its lint tools; when that cannot work they fail
/// saying why: a skipped browser test would be no test.
/// </summary>
internal static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private static readonly Lazy<string> Installed = new(Install, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The browser's path, installing it first when it is not there.</summary>
    public static string Path => Installed.Value;

    private static string Install()
    {
        if (File.Exists(ExecutablePath))
        {
            return ExecutablePath;
        }
        if (!OperatingSystem.IsLinux() || !File.Exists("/usr/bin/apt-get"))
        {
            throw new InvalidOperationException(
                $"The playground tests drive Debian's chromium at {ExecutablePath}, which is missing, and this machine has no apt-get " +
                "to install it. Install chromium so that it is at that path.");
        }
        if (Environment.UserName != "root")
        {
            throw new InvalidOperationException(
                $"The playground tests drive Debian's chromium at {ExecutablePath}, which is missing, and installing it needs root " +
                $"(running as {Environment.UserName}). Run: sudo apt-get install -y --no-install-recommends chromium");
        }

        var log = new List<string>();
        (int exitCode, string output) = AptGet(log, "install", "-y", "--no-install-recommends", "chromium");
        // A fresh image has no package lists; only then is the (slower) update worth it.
        if (exitCode != 0 && (output.Contains("Unable to locate package", StringComparison.Ordinal)
            || output.Contains("has no installation candidate", StringComparison.Ordinal)))
        {
            AptGet(log, "update");
            (exitCode, _) = AptGet(log, "install", "-y", "--no-install-recommends", "chromium");
        }
        if (exitCode != 0 || !File.Exists(ExecutablePath))
        {
            throw new InvalidOperationException(
                $"The playground tests need Debian's chromium at {ExecutablePath} and could not install it with apt-get " +
                $"(exit {exitCode}). Install it (apt-get install -y --no-install-recommends chromium) and run the tests again.\n" +
                string.Join('\n', log));
        }
        return ExecutablePath;
    }

    private static (int ExitCode, string Output) AptGet(List<string> log, params string[] args)
    {
        var start = new ProcessStartInfo("apt-get") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["DEBIAN_FRONTEND"] = "noninteractive";
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            log.Add($"apt-get {string.Join(' ', args)}: no answer after 5 minutes");
            return (-1, "");
        }
        string output = stdout.Result + stderr.Result;
        // The tail says what went wrong; the whole download log would bury it.
        log.Add($"apt-get {string.Join(' ', args)} exited {process.ExitCode}:\n{string.Join('\n', output.Split('\n').TakeLast(15))}");
        return (process.ExitCode, output);
    }
}
