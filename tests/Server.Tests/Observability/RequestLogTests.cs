using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmServer.Host;
using LlmServer.Inference.Tests;
using LlmServer.Observability;

namespace LlmServer.Tests.Observability;

/// <summary>
/// The request log line and the request id, read from the lines the server writes (in the format
/// --log-format chose) through a <see cref="LogOutput"/> registered in place of the console.
/// </summary>
public sealed class RequestLogTests
{
    private const string Model = "gpt2-random-2l-64d";
    private const string SecretPrompt = "my-secret-prompt-words";

    private sealed class CapturedServer(RunningServer server, StringWriter lines) : IAsyncDisposable
    {
        public RunningServer Server { get; } = server;

        /// <summary>The request's log line: it is written just after the response, so it may take a moment.</summary>
        public async Task<string> LineContainingAsync(string text)
        {
            string? line = null;
            await Poll.UntilAsync(() => (line = Lines().FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal))) is not null,
                TimeSpan.FromSeconds(10), $"a log line that contains {text}", () => $"the log was:\n{All}");
            return line!;
        }

        public string All
        {
            get
            {
                return lines.ToString();
            }
        }

        public string[] Lines() => All.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        public ValueTask DisposeAsync() => Server.DisposeAsync();
    }

    private static async Task<CapturedServer> StartAsync(string[] flags, IReadOnlyDictionary<string, string?>? configuration = null)
    {
        var lines = new LockedStringWriter();
        RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB", .. flags],
            services => services.AddSingleton(new LogOutput(lines)), configuration: configuration);
        return new CapturedServer(server, lines);
    }

    private static async Task<HttpResponseMessage> ChatAsync(HttpClient http, string? requestId = null, string content = SecretPrompt)
    {
        var message = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(JsonSerializer.Serialize(new
            {
                model = Model,
                messages = new[] { new { role = "user", content } },
                max_tokens = 3,
                temperature = 0,
            }), Encoding.UTF8, "application/json"),
        };
        if (requestId is not null)
        {
            message.Headers.TryAddWithoutValidation("x-request-id", requestId);
        }
        HttpResponseMessage response = await http.SendAsync(message);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return response;
    }

    private static string RequestIdOf(HttpResponseMessage response) => Assert.Single(response.Headers.GetValues("x-request-id"));

    /// <summary>Completes when ASP.NET Core has stopped the span of each request id given (any server in the process).</summary>
    private sealed class RequestsFinished : IDisposable
    {
        private readonly Dictionary<string, TaskCompletionSource> _finished;
        private readonly ActivityListener _listener;

        public RequestsFinished(params string[] requestIds)
        {
            _finished = requestIds.ToDictionary(id => id, _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            _listener = new ActivityListener
            {
                ShouldListenTo = source => source.Name == "Microsoft.AspNetCore",
                Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
                ActivityStopped = activity =>
                {
                    if (activity.GetTagItem(RequestIdMiddleware.TagName) is string id && _finished.TryGetValue(id, out TaskCompletionSource? done))
                    {
                        done.TrySetResult();
                    }
                },
            };
            ActivitySource.AddActivityListener(_listener);
        }

        public Task AllAsync(TimeSpan timeout) => Task.WhenAll(_finished.Values.Select(f => f.Task)).WaitAsync(timeout);

        public void Dispose() => _listener.Dispose();
    }

    [Fact]
    public async Task X_request_id_is_returned_kept_when_sane_and_generated_otherwise()
    {
        await using CapturedServer captured = await StartAsync([]);
        HttpClient http = captured.Server.Http;

        using HttpResponseMessage given = await ChatAsync(http, "client-id_1.2:3");
        Assert.Equal("client-id_1.2:3", RequestIdOf(given));

        using HttpResponseMessage generated = await ChatAsync(http);
        string id = RequestIdOf(generated);
        Assert.Matches("^[0-9a-f]{32}$", id);
        using HttpResponseMessage another = await ChatAsync(http);
        Assert.NotEqual(id, RequestIdOf(another));

        // A value that could forge a log line or is absurdly long is replaced, not echoed.
        foreach (string insane in new[] { "two words", "evil\"quote", new string('a', 129) })
        {
            using HttpResponseMessage replaced = await ChatAsync(http, insane);
            Assert.Matches("^[0-9a-f]{32}$", RequestIdOf(replaced));
        }

        // Errors carry it too (the error middleware rewrites the response).
        using var missing = new HttpRequestMessage(HttpMethod.Get, "/v1/no-such-route");
        missing.Headers.Add("x-request-id", "not-found-1");
        using HttpResponseMessage notFound = await http.SendAsync(missing);
        Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
        Assert.Equal("not-found-1", RequestIdOf(notFound));
    }

    [Fact]
    public async Task A_request_line_holds_method_route_status_duration_model_tokens_and_request_id_but_not_the_prompt()
    {
        await using CapturedServer captured = await StartAsync([]);
        using HttpResponseMessage response = await ChatAsync(captured.Server.Http, "line-test-1");
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        JsonElement usage = body.RootElement.GetProperty("usage");
        string completionText = body.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

        string line = await captured.LineContainingAsync("request_id=line-test-1");
        Assert.Matches(@"\[\d\d:\d\d:\d\d INF\] POST /v1/chat/completions responded 200 in \d+\.\d ms; ", line);
        Assert.Contains($"model={Model} ", line);
        Assert.Contains($"prompt_tokens={usage.GetProperty("prompt_tokens").GetInt32()} ", line);
        Assert.Contains($"completion_tokens={usage.GetProperty("completion_tokens").GetInt32()} ", line);

        Assert.DoesNotContain(SecretPrompt, captured.All);
        if (completionText.Trim().Length > 3)
        {
            Assert.DoesNotContain(completionText, captured.All);
        }
    }

    [Theory]
    [InlineData("text")]
    [InlineData("json")]
    public async Task Log_prompts_puts_the_prompt_and_completion_text_in_the_request_line(string format)
    {
        await using CapturedServer captured = await StartAsync(["--log-prompts", "--log-format", format]);
        using HttpResponseMessage response = await ChatAsync(captured.Server.Http, "with-prompts-1");
        using JsonDocument body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        string completionText = body.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;

        string line = await captured.LineContainingAsync("with-prompts-1");
        if (format == "json")
        {
            using JsonDocument parsed = JsonDocument.Parse(line);
            Assert.Contains(SecretPrompt, parsed.RootElement.GetProperty("Prompt").GetString());
            Assert.Equal(completionText, parsed.RootElement.GetProperty("Completion").GetString());
        }
        else
        {
            Assert.Contains(" prompt=", line);
            Assert.Contains(SecretPrompt, line);
            Assert.Contains(" completion=", line);
        }
    }

    [Fact]
    public async Task Json_log_format_writes_one_compact_json_object_per_line_with_the_request_fields_and_trace_ids()
    {
        await using CapturedServer captured = await StartAsync(["--log-format", "json"]);
        using (await ChatAsync(captured.Server.Http, "json-test-1"))
        {
        }
        await captured.LineContainingAsync("json-test-1");

        foreach (string text in captured.Lines())
        {
            using JsonDocument parsed = JsonDocument.Parse(text); // every line is one JSON object
            Assert.True(parsed.RootElement.TryGetProperty("@t", out _));
        }
        using JsonDocument line = JsonDocument.Parse(await captured.LineContainingAsync("json-test-1"));
        JsonElement e = line.RootElement;
        Assert.Equal("POST", e.GetProperty("RequestMethod").GetString());
        Assert.Equal("/v1/chat/completions", e.GetProperty("Route").GetString());
        Assert.Equal(200, e.GetProperty("StatusCode").GetInt32());
        Assert.True(e.GetProperty("Elapsed").GetDouble() > 0);
        Assert.Equal(Model, e.GetProperty("Model").GetString());
        Assert.True(e.GetProperty("PromptTokens").GetInt32() > 0);
        Assert.Equal(3, e.GetProperty("CompletionTokens").GetInt32());
        Assert.Equal("json-test-1", e.GetProperty("RequestId").GetString());
        Assert.Matches("^[0-9a-f]{32}$", e.GetProperty("@tr").GetString());
        Assert.DoesNotContain(SecretPrompt, captured.All);
    }

    [Fact]
    public async Task Configured_minimum_level_wins_over_the_built_in_default()
    {
        await using CapturedServer captured = await StartAsync([], new Dictionary<string, string?> { ["Serilog:MinimumLevel:Default"] = "Warning" });
        // A request's line would be written inside the pipeline that ASP.NET Core's span for it encloses:
        // once both spans have stopped, every line these requests could log is in.
        using RequestsFinished finished = new("quiet-1", "after-quiet-1");
        using (await ChatAsync(captured.Server.Http, "quiet-1"))
        {
        }
        using var missing = new HttpRequestMessage(HttpMethod.Get, "/v1/no-such-route");
        missing.Headers.Add("x-request-id", "after-quiet-1");
        using (await captured.Server.Http.SendAsync(missing))
        {
        }
        await finished.AllAsync(TimeSpan.FromSeconds(10));
        Assert.DoesNotContain("quiet-1", captured.All);
        Assert.DoesNotContain("INF", captured.All);
    }

    [Fact]
    public void Log_format_must_be_text_or_json()
    {
        Microsoft.Extensions.Options.OptionsValidationException e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() =>
        {
            using WebApplication app = ServerApplication.Build(["--model", TestFixtures.ModelDirectory(Model), "--log-format", "xml", "--otlp-endpoint", "not a url"]);
            _ = app.Services.GetRequiredService<Microsoft.Extensions.Options.IOptions<ServerOptions>>().Value;
        });
        Assert.Contains(e.Failures, f => f.Contains("--log-format", StringComparison.Ordinal));
        Assert.Contains(e.Failures, f => f.Contains("--otlp-endpoint", StringComparison.Ordinal));
    }
}
