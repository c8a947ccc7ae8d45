using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests.Responses;

/// <summary>The qwen3 fixture served with a data directory, and the Responses API's named SSE events read back.</summary>
internal static class ResponsesServer
{
    public static Task<RunningServer> StartAsync(string dataDir) =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("qwen3-random-2l-64d"), "--kv-cache-memory", "64MiB", "--data-dir", dataDir]);

    /// <summary>Each event's name (its <c>event:</c> line) and data; a stream of named events has no [DONE].</summary>
    public static List<(string Name, JsonElement Data)> ParseEvents(string body)
    {
        var events = new List<(string, JsonElement)>();
        foreach (string block in body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries))
        {
            string[] lines = block.Split('\n');
            string name = Assert.Single(lines, l => l.StartsWith("event: ", StringComparison.Ordinal))["event: ".Length..];
            string data = Assert.Single(lines, l => l.StartsWith("data: ", StringComparison.Ordinal))["data: ".Length..];
            events.Add((name, JsonDocument.Parse(data).RootElement.Clone()));
        }
        return events;
    }
}
