using System.Diagnostics;
using System.Reflection;

namespace LlmServer.Bench.Scenarios;

/// <summary>
/// A server started by the benchmark suite as a separate process, the way an operator runs it,
/// from this same executable; stopped (and waited for) when disposed.
/// </summary>
public sealed class ChildServer : IAsyncDisposable
{
    private readonly Process _process;

    private ChildServer(Process process) => _process = process;

    public static Task<ChildServer> StartAsync(string modelDirectory, int port, TextWriter log, CancellationToken cancellationToken, params string[] extraFlags) =>
        StartAsync(null, modelDirectory, port, log, cancellationToken, extraFlags);

    /// <param name="serverAssembly">Another build's llmserver.dll to run instead of this executable (to compare two builds in one run).</param>
    public static async Task<ChildServer> StartAsync(string? serverAssembly, string modelDirectory, int port, TextWriter log, CancellationToken cancellationToken,
        params string[] extraFlags)
    {
        ProcessStartInfo start;
        if (serverAssembly is not null)
        {
            start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Path.GetFullPath(serverAssembly));
        }
        else
        {
            start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true };
            // Under `dotnet llmserver.dll` the process is the dotnet host, which needs the assembly first:
            // the entry assembly (llmserver.dll), not this library's.
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
            {
                start.ArgumentList.Add(Assembly.GetEntryAssembly()!.Location);
            }
        }
        foreach (string arg in new[] { "serve", "--model", modelDirectory, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Concat(extraFlags))
        {
            start.ArgumentList.Add(arg);
        }
        Process process = Process.Start(start) ?? throw new InvalidOperationException("could not start the server process");
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) log.WriteLine($"  [server] {e.Data}"); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) log.WriteLine($"  [server] {e.Data}"); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"the server exited with code {process.ExitCode} before it was ready");
            }
            try
            {
                using HttpResponseMessage health = await http.GetAsync("/health", cancellationToken);
                if (health.IsSuccessStatusCode)
                {
                    return new ChildServer(process);
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
            await Task.Delay(250, cancellationToken);
        }
        process.Kill(entireProcessTree: true);
        throw new TimeoutException("the server did not become healthy within 2 minutes");
    }

    /// <summary>The server process's resident set size now, read from the operating system.</summary>
    public long ResidentBytes
    {
        get
        {
            _process.Refresh();
            return _process.WorkingSet64;
        }
    }

    /// <summary>CPU time the server process has used so far, all threads together.</summary>
    public TimeSpan CpuTime
    {
        get
        {
            _process.Refresh();
            return _process.TotalProcessorTime;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
