using System.Net;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Tests;

/// <summary>
/// Big request bodies: refused by size with a 413 in OpenAI's shape, read across many buffer chunks
/// without changing a character, and refused for the context before they are encoded.
/// </summary>
public sealed class LargeRequestTests : IAsyncLifetime
{
    private const int ContextLength = 128;
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB",
            "--max-request-body", "1MiB"]);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_body_over_the_limit_gets_413_in_OpenAIs_shape_with_or_without_a_content_length(bool contentLength)
    {
        byte[] body = JsonSerializer.SerializeToUtf8Bytes(new { messages = new[] { new { role = "user", content = new string('a', 3_000_000) } } });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = contentLength ? new ByteArrayContent(body) : new UnknownLengthContent(body),
        };
        request.Content.Headers.ContentType = new("application/json");

        using HttpResponseMessage response = await _server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal(contentLength, request.Content.Headers.ContentLength is not null);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("request_too_large", error.GetProperty("code").GetString());
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Contains("1048576 bytes (--max-request-body)", error.GetProperty("message").GetString());
        Assert.Equal(JsonValueKind.Null, error.GetProperty("param").ValueKind);

        using HttpResponseMessage after = await PostAsync("/v1/completions", new { prompt = "ok", max_tokens = 2 });
        Assert.Equal(HttpStatusCode.OK, after.StatusCode);
    }

    [Fact]
    public async Task A_long_escaped_prompt_is_read_across_buffer_chunks_exactly()
    {
        // ~600 KB of JSON (many 64 KiB chunks): newlines, quotes, \u escapes of CJK and of a surrogate pair.
        var text = new StringBuilder();
        var random = new Random(5);
        string[] pieces = ["word ", "\n", "\"quoted\" ", "中文 ", "😀", "tab\there ", "é", "\\back\\slash "];
        while (text.Length < 300_000)
        {
            text.Append(pieces[random.Next(pieces.Length)]);
        }
        string prompt = text.ToString();
        // ASCII-only JSON, as Python's json.dumps sends it: every non-ASCII character a \uXXXX escape.
        string json = "{\"prompt\":" + JsonSerializer.Serialize(prompt, new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.Default }) + "}";
        Assert.True(Encoding.UTF8.GetByteCount(json) > 4 * 64 * 1024);

        using HttpResponseMessage response = await _server.Http.PostAsync("/tokenize", new StringContent(json, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        int[] tokens = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(TestFixtures.ModelDirectory("gpt2-random-2l-64d"));
        Assert.Equal(tokenizer.Encode(prompt), tokens);
    }

    [Theory]
    [InlineData("/v1/completions", "prompt")]
    [InlineData("/v1/chat/completions", "messages")]
    public async Task A_prompt_too_long_for_the_context_is_refused_with_a_lower_bound_when_it_is_huge(string path, string param)
    {
        // 900,000 letters in one word: at least 900,000 / 128 (the longest GPT-2 token) tokens, refused unencoded.
        string word = new('x', 900_000);
        object body = path == "/v1/completions" ? new { prompt = word } : new { messages = new[] { new { role = "user", content = word } } };

        using HttpResponseMessage response = await PostAsync(path, body);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("context_length_exceeded", error.GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains($"maximum context length is {ContextLength} tokens. However, your prompt has at least ", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_prompt_just_over_the_context_is_still_refused_and_one_that_fits_still_runs()
    {
        using HttpResponseMessage tooLong = await PostAsync("/v1/completions", new { prompt = string.Concat(Enumerable.Repeat(" hello", ContextLength)) });
        Assert.Equal(HttpStatusCode.BadRequest, tooLong.StatusCode);
        Assert.Contains("at least 128 tokens", await tooLong.Content.ReadAsStringAsync());

        using HttpResponseMessage fits = await PostAsync("/v1/completions", new { prompt = string.Concat(Enumerable.Repeat(" hello", ContextLength - 1)), max_tokens = 1 });
        Assert.Equal(HttpStatusCode.OK, fits.StatusCode);
        Assert.Equal(ContextLength - 1, JsonDocument.Parse(await fits.Content.ReadAsStringAsync()).RootElement.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Theory]
    [InlineData("/v1/completions")]
    [InlineData("/v1/chat/completions")]
    public async Task A_full_queue_refuses_before_the_prompt_is_rendered_or_encoded(string path)
    {
        await using RunningServer full = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB"],
            services => services.AddSingleton<IEngineClient>(provider => new FullQueueEngine(provider.GetRequiredService<EngineClient>())));
        // Would be a 400 (too long for the context) if it were encoded first.
        string word = new('x', 900_000);
        object body = path == "/v1/completions" ? new { prompt = word } : new { messages = new[] { new { role = "user", content = word } } };

        using HttpResponseMessage response = await full.Http.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
    }

    [Fact]
    public async Task A_malformed_message_is_a_400_even_when_the_queue_is_full()
    {
        // A 429 would be retried by the SDKs, and the client would never learn what was wrong.
        await using RunningServer full = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--kv-cache-memory", "64MiB"],
            services => services.AddSingleton<IEngineClient>(provider => new FullQueueEngine(provider.GetRequiredService<EngineClient>())));
        string body = JsonSerializer.Serialize(new { messages = new[] { new { role = "wizard", content = "hi" } } });

        using HttpResponseMessage response = await full.Http.PostAsync("/v1/chat/completions", new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("messages[0].role", await response.Content.ReadAsStringAsync());
    }

    private Task<HttpResponseMessage> PostAsync(string path, object body) =>
        _server.Http.PostAsync(path, new StringContent(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json"));

    /// <summary>Content HttpClient cannot know the length of, so it is sent chunked (no Content-Length).</summary>
    private sealed class UnknownLengthContent(byte[] bytes) : HttpContent
    {
        protected override async Task SerializeToStreamAsync(Stream stream, System.Net.TransportContext? context)
        {
            for (int offset = 0; offset < bytes.Length; offset += 16_384)
            {
                await stream.WriteAsync(bytes.AsMemory(offset, Math.Min(16_384, bytes.Length - offset)));
            }
        }

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }

    /// <summary>The real engine with every queue slot taken.</summary>
    private sealed class FullQueueEngine(IEngineClient engine) : IEngineClient
    {
        public Task<ServedModel> Ready => engine.Ready;
        public EngineStatistics Statistics => engine.Statistics;
        public ServedModelCatalog Models => engine.Models;
        public EngineAdmission? TryAdmit(int requests) => null;
        public int AdmissionLimit => engine.AdmissionLimit;
        public IAsyncEnumerable<GenerationEvent> GenerateAsync(EngineSubmission submission, CancellationToken cancellationToken = default) =>
            engine.GenerateAsync(submission, cancellationToken);
    }
}
