using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Tests.ClientSdks;

namespace LlmServer.Tests.Responses;

/// <summary>A conversation stored under --data-dir goes on after the server restarts on the same directory.</summary>
public sealed class ResponsesRestartTests
{
    [Fact]
    public async Task A_stored_conversation_survives_a_restart()
    {
        using var data = new TemporaryDataDirectory("responses-restart");
        string id;
        string firstText;
        await using (RunningServer first = await ResponsesServer.StartAsync(data.Path))
        {
            JsonElement response = await CreateAsync(first, new JsonObject { ["input"] = "Remember this.", ["temperature"] = 0, ["max_output_tokens"] = 4 });
            id = response.GetProperty("id").GetString()!;
            firstText = response.GetRawText();
        }

        await using RunningServer second = await ResponsesServer.StartAsync(data.Path);
        JsonElement stored = await second.Http.GetFromJsonAsync<JsonElement>($"/v1/responses/{id}");
        Assert.Equal(firstText, stored.GetRawText());
        JsonElement next = await CreateAsync(second, new JsonObject { ["input"] = "What was it?", ["previous_response_id"] = id, ["temperature"] = 0, ["max_output_tokens"] = 4 });
        JsonElement alone = await CreateAsync(second, new JsonObject { ["input"] = "What was it?", ["temperature"] = 0, ["max_output_tokens"] = 4 });
        Assert.Equal(id, next.GetProperty("previous_response_id").GetString());
        Assert.True(next.GetProperty("usage").GetProperty("input_tokens").GetInt32() > alone.GetProperty("usage").GetProperty("input_tokens").GetInt32());
    }

    [Fact]
    public async Task The_openai_node_sdk_continues_a_conversation_across_a_restart()
    {
        await NodeClients.EnsureInstalledAsync();
        using var data = new TemporaryDataDirectory("responses-node-restart");
        string id;
        await using (RunningServer first = await ResponsesServer.StartAsync(data.Path))
        {
            id = PassingLine(await RunScenarioAsync(first)).GetProperty("id").GetString()!;
        }

        await using RunningServer second = await ResponsesServer.StartAsync(data.Path);
        JsonElement continued = PassingLine(await RunScenarioAsync(second, id));
        Assert.NotEqual(id, continued.GetProperty("id").GetString());
    }

    private static Task<NodeRun> RunScenarioAsync(RunningServer server, params string[] previous) =>
        NodeClients.RunAsync("openai-responses-restart", [new Uri(server.BaseAddress, "/v1").ToString(), "qwen3-random-2l-64d", .. previous]);

    private static JsonElement PassingLine(NodeRun run)
    {
        Assert.True(run.ExitCode == 0, $"exited with {run.ExitCode}:\n{run.Output}");
        JsonElement line = JsonDocument.Parse(run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]).RootElement.Clone();
        Assert.True(line.GetProperty("ok").GetBoolean(), line.GetRawText());
        return line;
    }

    private static async Task<JsonElement> CreateAsync(RunningServer server, JsonObject body)
    {
        using HttpResponseMessage response = await server.Http.PostAsJsonAsync("/v1/responses", body);
        JsonElement json = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.IsSuccessStatusCode, json.GetRawText());
        return json;
    }
}
