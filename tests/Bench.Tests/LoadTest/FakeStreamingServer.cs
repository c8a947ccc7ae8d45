using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace LlmServer.Bench.Tests.LoadTest;

/// <summary>How the fake answers one request, chosen by the request's arrival order.</summary>
public enum FakeReply
{
    Stream,
    RateLimited,
    ErrorEventAfterFirstToken,
    StreamCutBeforeDone,
}

/// <summary>
/// A stand-in OpenAI-compatible server on a loopback port: it streams max_tokens one-token chunks, each
/// after a known delay, then a usage chunk and [DONE], so the load generator's timings can be checked
/// against known lower bounds. It counts what the benchmark sent it.
/// </summary>
public sealed class FakeStreamingServer : IAsyncDisposable
{
    public const string ModelId = "fake-model";

    private readonly WebApplication _app;
    private readonly TimeSpan _tokenDelay;
    private readonly Func<int, FakeReply> _replyFor;
    private readonly ConcurrentQueue<JsonElement> _bodies = new();
    private int _requests;
    private int _inFlight;
    private int _peakInFlight;

    private FakeStreamingServer(TimeSpan tokenDelay, Func<int, FakeReply> replyFor)
    {
        _tokenDelay = tokenDelay;
        _replyFor = replyFor;
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _app = builder.Build();
        _app.MapGet("/v1/models", (HttpContext context) => WriteJsonAsync(context, 200, $$"""{"object":"list","data":[{"id":"{{ModelId}}","object":"model"}]}"""));
        _app.MapPost("/v1/completions", (HttpContext context) => CompleteAsync(context, chat: false));
        _app.MapPost("/v1/chat/completions", (HttpContext context) => CompleteAsync(context, chat: true));
    }

    public Uri BaseUrl { get; private set; } = null!;

    /// <summary>The JSON bodies of the completion requests received, in arrival order.</summary>
    public IReadOnlyCollection<JsonElement> RequestBodies => _bodies;

    public int PeakInFlight => Volatile.Read(ref _peakInFlight);

    public static async Task<FakeStreamingServer> StartAsync(TimeSpan tokenDelay, Func<int, FakeReply>? replyFor = null)
    {
        var server = new FakeStreamingServer(tokenDelay, replyFor ?? (_ => FakeReply.Stream));
        await server._app.StartAsync();
        server.BaseUrl = new Uri(server._app.Urls.First());
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task CompleteAsync(HttpContext context, bool chat)
    {
        int index = Interlocked.Increment(ref _requests) - 1;
        InterlockedMax(ref _peakInFlight, Interlocked.Increment(ref _inFlight));
        bool inFlight = true;
        void Finished()
        {
            if (inFlight)
            {
                inFlight = false;
                Interlocked.Decrement(ref _inFlight);
            }
        }
        try
        {
            JsonElement body = await JsonSerializer.DeserializeAsync<JsonElement>(context.Request.Body, cancellationToken: context.RequestAborted);
            _bodies.Enqueue(body);
            FakeReply reply = _replyFor(index);
            if (reply == FakeReply.RateLimited)
            {
                Finished();
                await WriteJsonAsync(context, 429, """{"error":{"message":"too many requests","type":"rate_limit_error","param":null,"code":null}}""");
                return;
            }
            if (await StreamTokensAsync(context, chat, body, reply))
            {
                // Counted out before the client can see the end, so that it cannot send its next request
                // while this one still counts as in flight.
                Finished();
                await WriteEventAsync(context, "[DONE]");
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client gave up (timeout or cancelled run): nothing left to answer.
        }
        finally
        {
            Finished();
        }
    }

    /// <summary>Streams the token chunks and the usage chunk; false when <paramref name="reply"/> breaks the stream off instead.</summary>
    private async Task<bool> StreamTokensAsync(HttpContext context, bool chat, JsonElement body, FakeReply reply)
    {
        int maxTokens = body.GetProperty("max_tokens").GetInt32();
        int promptTokens = PromptTokens(body, chat);
        context.Response.StatusCode = 200;
        context.Response.ContentType = "text/event-stream";
        if (chat)
        {
            // Like OpenAI: a role-only first chunk, which carries no token and must not count as the first one.
            await WriteEventAsync(context, """{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}""");
        }
        for (int token = 0; token < maxTokens; token++)
        {
            await Task.Delay(_tokenDelay, context.RequestAborted);
            if (reply == FakeReply.ErrorEventAfterFirstToken && token == 1)
            {
                await WriteEventAsync(context, """{"error":{"message":"engine failed","type":"internal_error","param":null,"code":null}}""");
                return false;
            }
            if (reply == FakeReply.StreamCutBeforeDone && token == 2)
            {
                return false;
            }
            await WriteEventAsync(context, chat
                ? $$$"""{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" tok{{{token}}}"}}]}"""
                : $$$"""{"object":"text_completion","choices":[{"index":0,"text":" tok{{{token}}}"}]}""");
        }
        await WriteEventAsync(context, $$$"""{"choices":[],"usage":{"prompt_tokens":{{{promptTokens}}},"completion_tokens":{{{maxTokens}}},"total_tokens":{{{promptTokens + maxTokens}}}}}""");
        return true;
    }

    /// <summary>Token ids count one each; text counts one token per word, the way the benchmark's word prompts are built.</summary>
    private static int PromptTokens(JsonElement body, bool chat)
    {
        JsonElement prompt = chat ? body.GetProperty("messages")[0].GetProperty("content") : body.GetProperty("prompt");
        return prompt.ValueKind == JsonValueKind.Array
            ? prompt.GetArrayLength()
            : prompt.GetString()!.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    private static async Task WriteEventAsync(HttpContext context, string data)
    {
        await context.Response.WriteAsync($"data: {data}\n\n", context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }

    private static async Task WriteJsonAsync(HttpContext context, int status, string json)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(json, Encoding.UTF8, context.RequestAborted);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current = Volatile.Read(ref target);
        while (value > current)
        {
            int seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }
            current = seen;
        }
    }
}
