using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace LlmServer.Playground.Tests;

/// <summary>The bodies of the chat requests a page sends, in order, as the browser sent them.</summary>
public sealed class ChatRequestRecorder
{
    private readonly ConcurrentQueue<JsonObject> _bodies = new();

    public ChatRequestRecorder(IPage page) => page.Request += (_, request) =>
    {
        if (request.Method == "POST" && request.Url.EndsWith("/v1/chat/completions", StringComparison.Ordinal))
        {
            _bodies.Enqueue(JsonNode.Parse(request.PostData!)!.AsObject());
        }
    };

    public IReadOnlyList<JsonObject> Bodies => [.. _bodies];

    public async Task<IReadOnlyList<JsonObject>> WaitForAsync(int count)
    {
        await Inference.Tests.Poll.UntilAsync(() => _bodies.Count >= count, TimeSpan.FromSeconds(30), $"{count} chat requests");
        return Bodies;
    }
}
