using System.Diagnostics;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>The llmserver executable run as an operator runs it, in a process of its own.</summary>
internal static class LlmServerProcess
{
    /// <returns>The exit code, and standard output followed by standard error.</returns>
    public static async Task<(int ExitCode, string Output)> RunAsync(TimeSpan timeout, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "llmserver.dll"));
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"llmserver {string.Join(' ', args)} ran past {timeout}: {await stdout}{await stderr}");
        }
        return (process.ExitCode, await stdout + await stderr);
    }

    /// <summary>Starts llmserver with <paramref name="args"/> and leaves it running; every line it writes goes to <paramref name="onLine"/>.</summary>
    public static Process Start(IEnumerable<string> args, Action<string>? onLine = null)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "llmserver.dll"));
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }
        Process process = Process.Start(start)!;
        // Both pipes are drained, or a chatty server would block on a full pipe.
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) onLine?.Invoke(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) onLine?.Invoke(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>Waits until <paramref name="path"/> answers 2xx, failing at once if the server exits first.</summary>
    public static Task WaitHealthyAsync(HttpClient http, Process server, string path, TimeSpan timeout) =>
        Poll.UntilAsync(async () =>
        {
            Assert.False(server.HasExited, "the server exited before it was ready");
            try
            {
                using HttpResponseMessage health = await http.GetAsync(path);
                return health.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, timeout, $"the server to answer {path}");
}
