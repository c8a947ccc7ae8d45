using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>
/// A tool-calling conversation through the real server, rendered by Qwen3's chat template exactly as Hugging
/// Face renders it (../shared/fixtures/tokenizers/qwen3/chat_cases.json, case "tools"). The client sends it
/// as OpenAI's SDKs do: an assistant turn with null content and tool_calls whose arguments are a JSON string,
/// then a tool message answering the call's id. The model is the qwen3-random-2l-64d fixture, whose
/// tokenizer files are Qwen3's.
/// </summary>
public sealed class ToolConversationTests(ToolConversationTests.Qwen3Server fixture) : IClassFixture<ToolConversationTests.Qwen3Server>
{
    private readonly JsonElement _case = QwenToolCase();
    private RunningServer Server => fixture.Server;

    /// <summary>One server for the class: loading Qwen3's 150k-token tokenizer takes a moment.</summary>
    public sealed class Qwen3Server : IAsyncLifetime
    {
        public RunningServer Server { get; private set; } = null!;

        public async Task InitializeAsync() =>
            Server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("qwen3-random-2l-64d"), "--kv-cache-memory", "64MiB"]);

        public async Task DisposeAsync()
        {
            if (Server is not null)
            {
                await Server.DisposeAsync();
            }
        }
    }

    private static JsonElement QwenToolCase()
    {
        string path = Path.Combine(TestFixtures.FixturesDirectory, "tokenizers", "qwen3", "chat_cases.json");
        using JsonDocument cases = JsonDocument.Parse(File.ReadAllText(path));
        return cases.RootElement.GetProperty("cases").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "tools").Clone();
    }

    /// <summary>The fixture's conversation as an OpenAI client sends it: call ids, JSON-string arguments, null content beside tool calls.</summary>
    private JsonArray WireMessages()
    {
        var messages = new JsonArray();
        int call = 0;
        foreach (JsonElement message in _case.GetProperty("messages").EnumerateArray())
        {
            var wire = JsonNode.Parse(message.GetRawText())!.AsObject();
            if (wire["tool_calls"] is JsonArray calls)
            {
                wire["content"] = null;
                foreach (JsonObject toolCall in calls.Cast<JsonObject>())
                {
                    toolCall.Insert(0, "id", $"call_{call++}");
                    JsonObject function = toolCall["function"]!.AsObject();
                    function["arguments"] = function["arguments"]!.ToJsonString();
                }
            }
            if (wire["role"]!.GetValue<string>() == "tool")
            {
                wire["tool_call_id"] = "call_0";
            }
            messages.Add(wire);
        }
        return messages;
    }

    private int[] ExpectedIds => _case.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray();

    private JsonNode Tools => JsonNode.Parse(_case.GetProperty("tools").GetRawText())!;

    private async Task<JsonElement> PostAsync(string path, JsonObject body)
    {
        using HttpResponseMessage response = await Server.Http.PostAsJsonAsync(path, body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    [Fact]
    public async Task Tokenize_renders_tools_tool_calls_and_tool_replies_as_hugging_face()
    {
        JsonElement tokenized = await PostAsync("/tokenize", new JsonObject { ["messages"] = WireMessages(), ["tools"] = Tools });

        Assert.Equal(ExpectedIds, tokenized.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()).ToArray());
    }

    [Fact]
    public async Task A_chat_request_carrying_a_tool_conversation_is_given_the_same_prompt()
    {
        // tool_choice "none": the tools are rendered, as vLLM renders them, and no tool call is asked for.
        JsonElement reply = await PostAsync("/v1/chat/completions", new JsonObject
        {
            ["messages"] = WireMessages(), ["tools"] = Tools, ["tool_choice"] = "none", ["max_tokens"] = 2, ["temperature"] = 0,
        });

        Assert.Equal(ExpectedIds.Length, reply.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
    }

    [Fact]
    public async Task Arguments_that_are_not_json_are_refused_naming_the_field()
    {
        JsonArray messages = WireMessages();
        messages[2]!["tool_calls"]![0]!["function"]!["arguments"] = "{\"location\": ";

        using HttpResponseMessage response = await Server.Http.PostAsJsonAsync("/tokenize", new JsonObject { ["messages"] = messages });

        Assert.Equal(400, (int)response.StatusCode);
        JsonElement error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");
        Assert.Equal("messages[2].tool_calls[0].function.arguments", error.GetProperty("param").GetString());
    }
}
