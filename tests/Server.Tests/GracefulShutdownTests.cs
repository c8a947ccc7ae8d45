using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;
using Microsoft.Data.Sqlite;
using Xunit.Abstractions;

namespace LlmServer.Tests;

/// <summary>
/// SIGTERM to a real server process under load, as Kubernetes or docker stop send it: requests in
/// flight finish, new ones are refused, the fine-tuning state stays consistent, and the exit code is 0.
/// </summary>
public sealed class GracefulShutdownTests(ITestOutputHelper output) : IDisposable
{
    private readonly TemporaryDataDirectory _data = new("shutdown");
    private readonly StringBuilder _log = new();

    public void Dispose()
    {
        output.WriteLine(_log.ToString());
        _data.Dispose();
    }

    private const string TrainingData = """
        {"messages":[{"role":"user","content":"What is 2 + 2?"},{"role":"assistant","content":"4"}]}
        {"messages":[{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris"}]}
        """;

    [Fact]
    public async Task Sigterm_under_load_finishes_accepted_requests_refuses_new_ones_and_exits_0_with_a_consistent_store()
    {
        const string adminKey = "sk-admin-shutdown";
        int port = FreePort();
        // One request runs at a time, so the queued ones keep the drain busy for a few seconds.
        using Process server = StartServer(port, "--admin-key", adminKey, "--data-dir", _data.Path,
            "--max-num-seqs", "1", "--max-queue", "32", "--threads", "1", "--drain-timeout", "60");
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(90) };
            await WaitHealthyAsync(http, server);

            // Durable state before the signal: a file and a job.
            (HttpStatusCode uploadStatus, string uploaded) = await AuthorizedRequests.UploadAsync(http, TrainingData, "train.jsonl", adminKey);
            Assert.Equal(HttpStatusCode.OK, uploadStatus);
            string fileId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetString()!;
            using var create = new HttpRequestMessage(HttpMethod.Post, "/v1/fine_tuning/jobs")
            {
                Content = new StringContent($$$"""{"model":"{{{ServerFixture.ModelName}}}","training_file":"{{{fileId}}}","hyperparameters":{"n_epochs":50}}""",
                    Encoding.UTF8, "application/json"),
            };
            create.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminKey);
            using HttpResponseMessage created = await http.SendAsync(create);
            Assert.Equal(HttpStatusCode.OK, created.StatusCode);
            string jobId = JsonDocument.Parse(await created.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;

            // Load: streaming and non-streaming requests, all long.
            Task<(HttpStatusCode, string)>[] requests = Enumerable.Range(0, 8)
                .Select(i => SendAsync(http, stream: i % 2 == 0))
                .ToArray();
            // Wait until the server is visibly working (a stream has its headers) and the rest have arrived.
            await Poll.UntilAsync(() => requests.Any(r => r.IsCompleted) || Volatile.Read(ref _streamsStarted) > 0, TimeSpan.FromSeconds(30),
                "a stream's headers or a finished request");
            await WaitUntilAllArrivedAsync(http, requests);

            Terminate(server);

            // Draining: readiness says so (or the listener is already closed if the drain was quick).
            bool sawDraining = false, refusedDuringDrain = false, listenerClosed = false;
            await Poll.UntilAsync(async () =>
            {
                try
                {
                    using HttpResponseMessage ready = await http.GetAsync("/health/ready");
                    if (ready.StatusCode != HttpStatusCode.ServiceUnavailable)
                    {
                        return false;
                    }
                    sawDraining = true;
                    Assert.Equal("draining", JsonDocument.Parse(await ready.Content.ReadAsStringAsync()).RootElement.GetProperty("status").GetString());
                    using HttpResponseMessage refused = await http.PostAsync("/v1/completions",
                        new StringContent("""{"prompt":"Hello","max_tokens":2}""", Encoding.UTF8, "application/json"));
                    Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
                    JsonElement error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
                    Assert.Equal("server_shutting_down", error.GetProperty("code").GetString());
                    Assert.Equal("service_unavailable", error.GetProperty("type").GetString());
                    refusedDuringDrain = true;
                }
                catch (HttpRequestException)
                {
                    // Connection refused: the drain ended and the listener closed; a new request cannot get in either.
                    listenerClosed = true;
                }
                return true;
            }, TimeSpan.FromSeconds(30), "readiness to say draining or the listener to close");
            Assert.True(refusedDuringDrain || listenerClosed, "a new request during the shutdown was neither refused with 503 nor kept out");
            _log.AppendLine($"saw draining: {sawDraining}, refused during drain: {refusedDuringDrain}, listener closed: {listenerClosed}");

            // Every request that was accepted finished completely; a request that arrived after the signal got the 503.
            int completed = 0;
            foreach ((HttpStatusCode status, string body) in await Task.WhenAll(requests))
            {
                if (status == HttpStatusCode.ServiceUnavailable)
                {
                    Assert.Contains("server_shutting_down", body);
                    continue;
                }
                Assert.Equal(HttpStatusCode.OK, status);
                Assert.Contains("\"finish_reason\":\"length\"", body);
                Assert.DoesNotContain("\"error\"", body);
                if (body.StartsWith("data:", StringComparison.Ordinal))
                {
                    Assert.EndsWith("data: [DONE]\n\n", body);
                }
                completed++;
            }
            Assert.True(completed >= 1, "no request was in flight when the signal came");
            _log.AppendLine($"requests completed through the drain: {completed} of {requests.Length}");

            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await server.WaitForExitAsync(exit.Token);
            Assert.Equal(0, server.ExitCode);

            // The store is one consistent database holding the file and the job.
            SqliteConnection.ClearAllPools();
            using (var db = new SqliteConnection($"Data Source={Path.Combine(_data.Path, "llmserver.db")};Mode=ReadOnly;Pooling=False"))
            {
                db.Open();
                Assert.Equal("ok", Scalar(db, "PRAGMA integrity_check"));
                Assert.Equal(1L, Scalar(db, $"SELECT COUNT(*) FROM files WHERE id = '{fileId}'"));
                string? status = Scalar(db, "SELECT status FROM jobs WHERE id = $id", ("$id", jobId)) as string;
                _log.AppendLine($"job {jobId} after the shutdown: {status}");
                Assert.NotNull(status);
                if (status == "running")
                {
                    // Interrupted mid-training: it says it will resume.
                    Assert.Contains("Server shutting down; the job will resume from its last checkpoint",
                        Scalar(db, "SELECT group_concat(message, '|') FROM job_events WHERE job_id = $id", ("$id", jobId)) as string);
                }
            }
            string wal = Path.Combine(_data.Path, "llmserver.db-wal");
            Assert.True(!File.Exists(wal) || new FileInfo(wal).Length == 0, "the write-ahead log was not checkpointed at shutdown");
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
        }
    }

    [Fact]
    public async Task Requests_still_running_after_the_drain_timeout_end_with_a_clear_error_and_the_process_exits_0()
    {
        int port = FreePort();
        using Process server = StartServer(port, "--max-num-seqs", "1", "--max-queue", "32", "--threads", "1", "--drain-timeout", "0",
            "--data-dir", _data.Path);
        try
        {
            using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(90) };
            await WaitHealthyAsync(http, server);
            Task<(HttpStatusCode, string)>[] requests = Enumerable.Range(0, 8).Select(i => SendAsync(http, stream: i % 2 == 0)).ToArray();
            await Poll.UntilAsync(() => Volatile.Read(ref _streamsStarted) > 0, TimeSpan.FromSeconds(30), "a stream's headers");
            await WaitUntilAllArrivedAsync(http, requests);

            Terminate(server);

            int ended = 0;
            foreach ((HttpStatusCode status, string body) in await Task.WhenAll(requests))
            {
                _log.AppendLine($"{status}: ...{body[Math.Max(0, body.Length - 200)..]}");
                if (status == HttpStatusCode.OK && body.Contains("\"finish_reason\":\"length\"") && !body.Contains("\"error\""))
                {
                    continue;
                }
                // Cut off: a 503 before the headers, or in a stream an error event and [DONE]; never a silent end.
                Assert.Contains("server_shutting_down", body);
                if (status == HttpStatusCode.OK)
                {
                    Assert.EndsWith("data: [DONE]\n\n", body);
                }
                ended++;
            }
            Assert.True(ended >= 1, "no request was still running when the drain timeout passed");

            using var exit = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await server.WaitForExitAsync(exit.Token);
            Assert.Equal(0, server.ExitCode);
        }
        finally
        {
            if (!server.HasExited)
            {
                server.Kill(entireProcessTree: true);
            }
        }
    }

    private int _streamsStarted;

    private async Task<(HttpStatusCode, string)> SendAsync(HttpClient http, bool stream)
    {
        string body = $$"""{"model":"{{ServerFixture.ModelName}}","prompt":"Hello, my name is","max_tokens":110,"ignore_eos":true,"stream":{{(stream ? "true" : "false")}}}""";
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        try
        {
            using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (stream && response.StatusCode == HttpStatusCode.OK)
            {
                Interlocked.Increment(ref _streamsStarted);
            }
            string text = await response.Content.ReadAsStringAsync();
            return (response.StatusCode, text);
        }
        catch (HttpRequestException e)
        {
            // Only a request that never reached the server may fail to connect; one that was accepted must not be lost.
            return (HttpStatusCode.ServiceUnavailable, $"server_shutting_down (not connected: {e.Message})");
        }
    }

    private static object? Scalar(SqliteConnection db, string sql, params (string Name, object Value)[] parameters)
    {
        using SqliteCommand command = db.CreateCommand();
        command.CommandText = sql;
        foreach ((string name, object value) in parameters)
        {
            command.Parameters.AddWithValue(name, value);
        }
        return command.ExecuteScalar();
    }

    private Process StartServer(int port, params string[] flags) =>
        LlmServerProcess.Start(["serve", "--model", TestFixtures.ModelDirectory(ServerFixture.ModelName), "--port", port.ToString(), .. flags],
            line => { lock (_log) _log.AppendLine($"[server] {line}"); });

    private static Task WaitHealthyAsync(HttpClient http, Process server) =>
        LlmServerProcess.WaitHealthyAsync(http, server, "/health/ready", TimeSpan.FromSeconds(60));

    /// <summary>
    /// Until every request not yet answered is in the engine, running or queued, so that the signal
    /// finds them all accepted. (With one running at a time the queue holds the rest for seconds.)
    /// </summary>
    private static Task WaitUntilAllArrivedAsync(HttpClient http, Task<(HttpStatusCode, string)>[] requests)
    {
        int inEngine = 0;
        return Poll.UntilAsync(async () =>
        {
            int answered = requests.Count(r => r.IsCompleted);
            inEngine = await RequestsInEngineAsync(http);
            return inEngine + answered >= requests.Length;
        }, TimeSpan.FromSeconds(30), $"all {requests.Length} requests to arrive",
            () => $"{inEngine} in the engine, {requests.Count(r => r.IsCompleted)} answered");
    }

    /// <summary>Running plus waiting requests, from the samples (<c>name{labels} value [timestamp]</c>) of /metrics.</summary>
    private static async Task<int> RequestsInEngineAsync(HttpClient http)
    {
        string metrics = await http.GetStringAsync("/metrics");
        double total = 0;
        foreach (string line in metrics.Split('\n'))
        {
            foreach (string name in (string[])["llmserver_num_requests_running", "llmserver_num_requests_waiting"])
            {
                if (line.StartsWith(name, StringComparison.Ordinal) && line.Length > name.Length && line[name.Length] is '{' or ' ')
                {
                    string afterName = line[name.Length] == '{' ? line[(line.IndexOf('}') + 1)..] : line[name.Length..];
                    total += double.Parse(afterName.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
                }
            }
        }
        return (int)total;
    }

    /// <summary>SIGTERM, what an orchestrator sends (Process.Kill would be SIGKILL).</summary>
    private static void Terminate(Process process)
    {
        using Process kill = Process.Start("kill", ["-TERM", process.Id.ToString()])!;
        kill.WaitForExit();
        Assert.Equal(0, kill.ExitCode);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
