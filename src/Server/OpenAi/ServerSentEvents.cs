using System.Text;
using System.Text.Json;

namespace LlmServer.OpenAi;

/// <summary>
/// Writes OpenAI-style SSE: one <c>data: {json}</c> event per chunk, then <c>data: [DONE]</c>. The Responses API names
/// each event (<c>event: response.created</c>) and ends without [DONE], as OpenAI streams it.
/// </summary>
public sealed class ServerSentEvents(HttpResponse response)
{
    private static readonly byte[] Done = Encoding.UTF8.GetBytes("data: [DONE]\n\n");
    private bool _started;

    public async Task WriteAsync<T>(T chunk, CancellationToken cancellationToken, string? eventName = null)
    {
        Start();
        var payload = new MemoryStream();
        if (eventName is not null)
        {
            payload.Write(Encoding.UTF8.GetBytes($"event: {eventName}\n"));
        }
        payload.Write("data: "u8);
        JsonSerializer.Serialize(payload, chunk, OpenAiJson.Options);
        payload.Write("\n\n"u8);
        await response.Body.WriteAsync(payload.GetBuffer().AsMemory(0, (int)payload.Length), cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    public async Task CompleteAsync(CancellationToken cancellationToken)
    {
        Start();
        await response.Body.WriteAsync(Done, cancellationToken);
        await response.Body.FlushAsync(cancellationToken);
    }

    private void Start()
    {
        if (_started)
        {
            return;
        }
        _started = true;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        // Proxies such as nginx would otherwise buffer the stream and defeat token streaming.
        response.Headers["X-Accel-Buffering"] = "no";
    }
}
