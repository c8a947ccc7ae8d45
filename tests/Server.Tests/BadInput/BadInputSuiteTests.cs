using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;
using LlmServer.Observability;
using Xunit.Abstractions;

namespace LlmServer.Tests.BadInput;

/// <summary>
/// Every endpoint driven with generated malformed input: each must answer a 4xx in OpenAI's
/// error shape (or, where the input may be valid once repaired, at least never a 5xx), in time
/// proportional to its size, and leave the server serving with nothing unhandled in its log.
/// </summary>
public sealed class BadInputSuiteTests(BadInputSuiteTests.Server server, ITestOutputHelper output) : IClassFixture<BadInputSuiteTests.Server>
{
    private const string Model = "gpt2-random-2l-64d";
    private const int Seed = 20261205;

    public static TheoryData<string> JsonEndpointNames() => new(JsonEndpoints.Keys);

    private static readonly IReadOnlyDictionary<string, JsonEndpoint> JsonEndpoints = new Dictionary<string, JsonEndpoint>
    {
        ["chat"] = new("/v1/chat/completions",
            $$"""{"model":"{{Model}}","messages":[{"role":"user","content":"hi"}],"max_tokens":2}""",
            new Dictionary<string, FieldKind>
            {
                ["model"] = FieldKind.String, ["messages"] = FieldKind.Array, ["messages[0].role"] = FieldKind.String,
                ["messages[0].content"] = FieldKind.StringOrArray, ["max_tokens"] = FieldKind.Integer, ["max_completion_tokens"] = FieldKind.Integer, ["prompt_logprobs"] = FieldKind.Integer,
                ["temperature"] = FieldKind.Number, ["top_p"] = FieldKind.Number, ["n"] = FieldKind.Integer, ["stream"] = FieldKind.Boolean,
                ["stream_options"] = FieldKind.Object, ["stop"] = FieldKind.StringOrArray, ["seed"] = FieldKind.Integer,
                ["presence_penalty"] = FieldKind.Number, ["frequency_penalty"] = FieldKind.Number, ["logit_bias"] = FieldKind.Object,
                ["logprobs"] = FieldKind.Boolean, ["top_logprobs"] = FieldKind.Integer, ["top_k"] = FieldKind.Integer,
                ["min_tokens"] = FieldKind.Integer, ["ignore_eos"] = FieldKind.Boolean, ["stop_token_ids"] = FieldKind.Array,
                ["tools"] = FieldKind.Array, ["response_format"] = FieldKind.Object, ["user"] = FieldKind.String,
            },
            ["model", "messages[0].role", "messages[0].content", "stop", "user"], ["model", "messages[0].role", "messages[0].content"]),
        ["completions"] = new("/v1/completions",
            $$"""{"model":"{{Model}}","prompt":"hi","max_tokens":2}""",
            new Dictionary<string, FieldKind>
            {
                ["model"] = FieldKind.String, ["prompt"] = FieldKind.StringOrArray, ["max_tokens"] = FieldKind.Integer,
                ["temperature"] = FieldKind.Number, ["top_p"] = FieldKind.Number, ["n"] = FieldKind.Integer, ["stream"] = FieldKind.Boolean,
                ["stream_options"] = FieldKind.Object, ["stop"] = FieldKind.StringOrArray, ["seed"] = FieldKind.Integer,
                ["presence_penalty"] = FieldKind.Number, ["frequency_penalty"] = FieldKind.Number, ["logit_bias"] = FieldKind.Object,
                ["logprobs"] = FieldKind.Integer, ["echo"] = FieldKind.Boolean, ["suffix"] = FieldKind.String, ["best_of"] = FieldKind.Integer,
                ["top_k"] = FieldKind.Integer, ["min_tokens"] = FieldKind.Integer, ["ignore_eos"] = FieldKind.Boolean,
                ["stop_token_ids"] = FieldKind.Array, ["user"] = FieldKind.String, ["prompt_logprobs"] = FieldKind.Integer,
            },
            ["model", "prompt", "stop", "user"], ["model", "prompt"]),
        ["tokenize"] = new("/tokenize",
            $$"""{"model":"{{Model}}","prompt":"hi"}""",
            new Dictionary<string, FieldKind>
            {
                ["model"] = FieldKind.String, ["prompt"] = FieldKind.String, ["messages"] = FieldKind.Array, ["add_generation_prompt"] = FieldKind.Boolean,
            },
            ["model", "prompt"], ["model"]),
        ["detokenize"] = new("/detokenize",
            $$"""{"model":"{{Model}}","tokens":[1,2]}""",
            new Dictionary<string, FieldKind> { ["model"] = FieldKind.String, ["tokens"] = FieldKind.Array },
            ["model"], ["model"]),
        ["fine-tuning job"] = new("/v1/fine_tuning/jobs",
            $$"""{"model":"{{Model}}","training_file":"file-doesnotexist"}""",
            new Dictionary<string, FieldKind>
            {
                ["model"] = FieldKind.String, ["training_file"] = FieldKind.String, ["validation_file"] = FieldKind.String,
                ["suffix"] = FieldKind.String, ["seed"] = FieldKind.Integer, ["metadata"] = FieldKind.Object,
                ["hyperparameters"] = FieldKind.Object, ["method"] = FieldKind.Object,
            },
            ["model", "training_file", "suffix"], ["model", "training_file", "suffix"]),
        ["load model"] = new("/admin/models/load",
            """{"path":"/nonexistent/model","name":"bad-input-model"}""",
            new Dictionary<string, FieldKind> { ["path"] = FieldKind.String, ["name"] = FieldKind.String, ["base"] = FieldKind.String },
            ["path", "name"], ["path", "name"]),
        ["unload model"] = new("/admin/models/unload",
            """{"model":"not-served"}""",
            new Dictionary<string, FieldKind> { ["model"] = FieldKind.String, ["name"] = FieldKind.String },
            ["model"], ["model"]),
        ["alias"] = new("/admin/aliases",
            """{"alias":"bad-input-alias","model":"not-served"}""",
            new Dictionary<string, FieldKind> { ["alias"] = FieldKind.String, ["model"] = FieldKind.String },
            ["alias", "model"], ["alias", "model"]),
    };

    [Theory]
    [MemberData(nameof(JsonEndpointNames))]
    public async Task Generated_malformed_JSON_gets_an_OpenAI_shaped_4xx(string endpoint)
    {
        // A seed per endpoint that stays the same from run to run (string.GetHashCode does not).
        int seed = Seed + endpoint.Select((c, i) => c * (i + 1)).Sum();
        await RunAsync(new BadInputGenerator(seed).For(JsonEndpoints[endpoint]).ToList(), $"seed {seed}");
    }

    [Fact]
    public async Task Malformed_uploads_query_strings_and_ids_get_an_OpenAI_shaped_4xx()
    {
        const string line = """{"messages":[{"role":"user","content":"2 + 2?"},{"role":"assistant","content":"4"}]}""";
        byte[] Multipart(string body) => Encoding.UTF8.GetBytes(body.ReplaceLineEndings("\r\n"));
        string filePart = $"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"train.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n{line}\n\r\n";
        string purposePart = "--b\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n";
        var junk = new byte[4096];
        new Random(Seed).NextBytes(junk);
        const string multipart = "multipart/form-data; boundary=b";
        long id10 = 10_000_000_000;
        var cases = new List<MalformedRequest>
        {
            MalformedRequest.Bytes("upload without its closing boundary", "/v1/files", Multipart(purposePart + filePart), multipart),
            MalformedRequest.Bytes("upload cut inside the file", "/v1/files", Multipart(purposePart + filePart[..(filePart.Length / 2)]), multipart),
            MalformedRequest.Bytes("upload without a file", "/v1/files", Multipart(purposePart + "--b--\r\n"), multipart),
            MalformedRequest.Bytes("upload without a purpose", "/v1/files", Multipart(filePart + "--b--\r\n"), multipart),
            MalformedRequest.Bytes("upload with an unknown purpose", "/v1/files",
                Multipart(purposePart.Replace("fine-tune", "world-domination") + filePart + "--b--\r\n"), multipart),
            MalformedRequest.Bytes("upload of a file that is not JSONL", "/v1/files",
                Multipart(purposePart + filePart.Replace(line, "hello, world") + "--b--\r\n"), multipart),
            MalformedRequest.Bytes("upload without a boundary", "/v1/files", Multipart(purposePart + filePart + "--b--\r\n"), "multipart/form-data"),
            MalformedRequest.Bytes("upload of random bytes", "/v1/files", junk, multipart),
            MalformedRequest.Bytes("upload of an empty body", "/v1/files", [], multipart),
            MalformedRequest.Bytes("upload as JSON", "/v1/files", Encoding.UTF8.GetBytes("{\"purpose\":\"fine-tune\"}")),
            MalformedRequest.Bytes("upload with garbage part headers", "/v1/files", Multipart("--b\r\n\u0001\u0002: \u0003\r\n\r\nx\r\n--b--\r\n"), multipart),
            MalformedRequest.Get("files: limit not a number", "/v1/files?limit=abc"),
            MalformedRequest.Get("files: negative limit", "/v1/files?limit=-1"),
            MalformedRequest.Get("files: huge limit", $"/v1/files?limit={id10}"),
            MalformedRequest.Get("files: unknown order", "/v1/files?order=sideways"),
            MalformedRequest.Get("an unknown file", "/v1/files/file-nope"),
            MalformedRequest.Get("an unknown file's content", "/v1/files/file-nope/content"),
            new("deleting an unknown file", HttpMethod.Delete, "/v1/files/file-nope", null, null, Expectation.ClientError),
            MalformedRequest.Get("jobs: limit not a number", "/v1/fine_tuning/jobs?limit=abc"),
            MalformedRequest.Get("jobs: negative limit", "/v1/fine_tuning/jobs?limit=-5"),
            MalformedRequest.Get("an unknown job", "/v1/fine_tuning/jobs/ftjob-nope"),
            MalformedRequest.Get("an unknown job's events", "/v1/fine_tuning/jobs/ftjob-nope/events?limit=abc"),
            MalformedRequest.Get("an unknown job's checkpoints", "/v1/fine_tuning/jobs/ftjob-nope/checkpoints?limit=-1"),
            new("cancelling an unknown job", HttpMethod.Post, "/v1/fine_tuning/jobs/ftjob-nope/cancel", null, null, Expectation.ClientError),
            // Kestrel itself refuses a NUL in the path, before any middleware runs: no body can be added (see docs/api.md).
            MalformedRequest.Get("a model named NUL", "/v1/models/%00", Expectation.RefusedByKestrel),
            MalformedRequest.Get("a model with a 3,000-character name", "/v1/models/" + new string('m', 3000)),
            MalformedRequest.Get("a model named with invalid UTF-8", "/v1/models/%FF%FE"),
            new("removing an unknown alias", HttpMethod.Delete, "/admin/aliases/nope", null, null, Expectation.ClientError),
            new("GET on a POST route", HttpMethod.Get, "/v1/chat/completions", null, null, Expectation.ClientError),
            new("PUT on a model", HttpMethod.Put, "/v1/models/" + Model, null, null, Expectation.ClientError),
        };

        int filesBefore = await CountFilesAsync();
        await RunAsync(cases, "fixed table");
        Assert.Equal(filesBefore, await CountFilesAsync());
    }

    private async Task RunAsync(IReadOnlyList<MalformedRequest> cases, string origin)
    {
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        foreach (MalformedRequest request in cases)
        {
            string? failure = await CheckAsync(request);
            if (failure is not null)
            {
                failures.Add($"{failure} <- {request}");
            }
        }
        output.WriteLine($"{cases.Count} requests ({origin}) in {clock.Elapsed.TotalSeconds:F1} s, {failures.Count} failed");
        foreach (string failure in failures.Take(40))
        {
            output.WriteLine(failure);
        }

        Assert.True(failures.Count == 0, $"{failures.Count} of {cases.Count} requests ({origin}) were answered wrongly:\n" + string.Join("\n", failures.Take(20)));
        await AssertStillServingAsync();
    }

    private async Task<string?> CheckAsync(MalformedRequest malformed)
    {
        using var request = new HttpRequestMessage(malformed.Method, malformed.Path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", malformed.Path.StartsWith("/admin", StringComparison.Ordinal)
            || malformed.Path.StartsWith("/v1/files", StringComparison.Ordinal) || malformed.Path.StartsWith("/v1/fine_tuning", StringComparison.Ordinal)
                ? Server.AdminKey : Server.InferenceKey);
        if (malformed.Body is not null)
        {
            request.Content = new ByteArrayContent(malformed.Body);
            if (malformed.ContentType is not null)
            {
                request.Content.Headers.TryAddWithoutValidation("Content-Type", malformed.ContentType);
            }
        }
        HttpResponseMessage response;
        try
        {
            response = await server.Http.SendAsync(request);
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return $"no answer ({e.GetType().Name}: {e.Message})";
        }
        using (response)
        {
            int status = (int)response.StatusCode;
            string body = await response.Content.ReadAsStringAsync();
            if (status >= 500)
            {
                return $"{status} {Snippet(body)}";
            }
            if (malformed.Expect == Expectation.RefusedByKestrel)
            {
                return status is >= 400 and < 500 ? null : $"{status} where Kestrel refuses";
            }
            if (status < 400)
            {
                return malformed.Expect == Expectation.ClientError ? $"accepted with {status} {Snippet(body)}" : null;
            }
            return IsOpenAiError(response, body) ? null : $"{status} not in OpenAI's error shape: {Snippet(body)}";
        }
    }

    private static bool IsOpenAiError(HttpResponseMessage response, string body)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/json")
        {
            return false;
        }
        try
        {
            using JsonDocument document = JsonDocument.Parse(body);
            return document.RootElement.TryGetProperty("error", out JsonElement error)
                && error.TryGetProperty("message", out JsonElement message) && message.ValueKind == JsonValueKind.String && message.GetString()!.Length > 0
                && error.TryGetProperty("type", out JsonElement type) && type.ValueKind == JsonValueKind.String
                && error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _);
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static string Snippet(string body) => body.Length <= 200 ? body : body[..200] + "…";

    private async Task AssertStillServingAsync()
    {
        using var health = await server.Http.GetAsync("/health");
        Assert.Equal(200, (int)health.StatusCode);
        using var chat = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent($$"""{"model":"{{Model}}","messages":[{"role":"user","content":"still there?"}],"max_tokens":3}""",
                Encoding.UTF8, "application/json"),
        };
        chat.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Server.InferenceKey);
        using HttpResponseMessage answer = await server.Http.SendAsync(chat);
        Assert.Equal(200, (int)answer.StatusCode);
        using JsonDocument completion = JsonDocument.Parse(await answer.Content.ReadAsStringAsync());
        Assert.Equal(3, completion.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.DoesNotContain("Unhandled error", server.Log());
    }

    private async Task<int> CountFilesAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/files");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", Server.AdminKey);
        using HttpResponseMessage response = await server.Http.SendAsync(request);
        using JsonDocument list = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        return list.RootElement.GetProperty("data").GetArrayLength();
    }

    /// <summary>One server for the suite, with both keys, its own data directory, and its log kept to read.</summary>
    public sealed class Server : IAsyncLifetime
    {
        public const string InferenceKey = "sk-bad-input-inference", AdminKey = "sk-bad-input-admin";

        private readonly TemporaryDataDirectory _data = new("bad-input");
        private readonly LockedStringWriter _log = new();
        private RunningServer _server = null!;

        public HttpClient Http => _server.Http;

        public string Log() => _log.ToString();

        public async Task InitializeAsync() =>
            _server = await RunningServer.StartAsync(
                ["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB", "--api-key", InferenceKey, "--admin-key", AdminKey,
                    "--data-dir", _data.Path, "--no-training"],
                services => services.AddSingleton(new LogOutput(_log)));

        public async Task DisposeAsync()
        {
            await _server.DisposeAsync();
            _data.Dispose();
        }
    }
}
