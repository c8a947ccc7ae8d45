using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests.Responses;

/// <summary>
/// POST /v1/responses and the stored responses over HTTP, on the qwen3 fixture at temperature 0. Each translation is
/// checked against chat completions on the same conversation: the same prompt (input_tokens equal to chat's
/// prompt_tokens) and the same greedy text.
/// </summary>
public sealed class ResponsesApiTests(ResponsesApiTests.Qwen3Server fixture) : IClassFixture<ResponsesApiTests.Qwen3Server>
{
    private static readonly JsonObject AddSchema = new()
    {
        ["type"] = "object",
        ["properties"] = new JsonObject { ["a"] = new JsonObject { ["type"] = "integer" }, ["b"] = new JsonObject { ["type"] = "integer" } },
        ["required"] = new JsonArray("a", "b"),
        ["additionalProperties"] = false,
    };

    private HttpClient Http => fixture.Server.Http;

    public sealed class Qwen3Server : IAsyncLifetime
    {
        private readonly TemporaryDataDirectory _data = new("responses");
        public RunningServer Server { get; private set; } = null!;

        public async Task InitializeAsync() => Server = await ResponsesServer.StartAsync(_data.Path);

        public async Task DisposeAsync()
        {
            if (Server is not null)
            {
                await Server.DisposeAsync();
            }
            _data.Dispose();
        }
    }

    [Fact]
    public async Task A_string_input_with_instructions_is_chat_with_a_system_message_first()
    {
        JsonElement response = await CreateAsync(new JsonObject
        {
            ["input"] = "Tell me a story.",
            ["instructions"] = "You are terse.",
            ["temperature"] = 0,
            ["max_output_tokens"] = 6,
            ["metadata"] = new JsonObject { ["run"] = "1" },
        });
        JsonElement chat = await ChatAsync(new JsonArray(Message("system", "You are terse."), Message("user", "Tell me a story.")), 6);

        Assert.StartsWith("resp_", response.GetProperty("id").GetString());
        Assert.Equal("response", response.GetProperty("object").GetString());
        Assert.Equal("incomplete", response.GetProperty("status").GetString());
        Assert.Equal("max_output_tokens", response.GetProperty("incomplete_details").GetProperty("reason").GetString());
        JsonElement message = Assert.Single(response.GetProperty("output").EnumerateArray());
        Assert.Equal("message", message.GetProperty("type").GetString());
        Assert.StartsWith("msg_", message.GetProperty("id").GetString());
        Assert.Equal("assistant", message.GetProperty("role").GetString());
        JsonElement part = Assert.Single(message.GetProperty("content").EnumerateArray());
        Assert.Equal("output_text", part.GetProperty("type").GetString());
        Assert.Equal(0, part.GetProperty("annotations").GetArrayLength());
        Assert.Equal(chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(), part.GetProperty("text").GetString());

        JsonElement usage = response.GetProperty("usage");
        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), usage.GetProperty("input_tokens").GetInt32());
        Assert.Equal(6, usage.GetProperty("output_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("input_tokens").GetInt32() + 6, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(0, usage.GetProperty("output_tokens_details").GetProperty("reasoning_tokens").GetInt32());
        Assert.True(usage.GetProperty("input_tokens_details").TryGetProperty("cached_tokens", out _));

        Assert.Equal("You are terse.", response.GetProperty("instructions").GetString());
        Assert.Equal(6, response.GetProperty("max_output_tokens").GetInt32());
        Assert.Equal(0, response.GetProperty("temperature").GetDouble());
        Assert.Equal("1", response.GetProperty("metadata").GetProperty("run").GetString());
        Assert.True(response.GetProperty("store").GetBoolean());
        Assert.Equal(JsonValueKind.Null, response.GetProperty("previous_response_id").ValueKind);
        Assert.Equal("text", response.GetProperty("text").GetProperty("format").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_forced_function_tool_gives_a_function_call_item_and_its_output_continues_the_conversation()
    {
        JsonElement response = await CreateAsync(new JsonObject
        {
            ["input"] = "What is 2 + 3?",
            ["tools"] = new JsonArray(new JsonObject
            {
                ["type"] = "function", ["name"] = "add", ["description"] = "Adds two integers.", ["parameters"] = AddSchema.DeepClone(), ["strict"] = true,
            }),
            ["tool_choice"] = new JsonObject { ["type"] = "function", ["name"] = "add" },
            ["temperature"] = 0,
            ["max_output_tokens"] = 64,
        });

        JsonElement call = Assert.Single(response.GetProperty("output").EnumerateArray());
        Assert.Equal("function_call", call.GetProperty("type").GetString());
        Assert.StartsWith("fc_", call.GetProperty("id").GetString());
        Assert.StartsWith("call_", call.GetProperty("call_id").GetString());
        Assert.Equal("add", call.GetProperty("name").GetString());
        Assert.Equal("completed", call.GetProperty("status").GetString());
        using JsonDocument arguments = JsonDocument.Parse(call.GetProperty("arguments").GetString()!);
        Assert.Equal(JsonValueKind.Number, arguments.RootElement.GetProperty("a").ValueKind);
        Assert.Equal("add", response.GetProperty("tools")[0].GetProperty("name").GetString());

        // The call and its output, sent back as items, are the assistant's tool_calls turn and a tool message in chat.
        string callId = call.GetProperty("call_id").GetString()!;
        string argumentsText = call.GetProperty("arguments").GetString()!;
        JsonElement followUp = await CreateAsync(new JsonObject
        {
            ["input"] = new JsonArray(
                new JsonObject { ["role"] = "user", ["content"] = new JsonArray(new JsonObject { ["type"] = "input_text", ["text"] = "What is 2 + 3?" }) },
                new JsonObject { ["type"] = "function_call", ["call_id"] = callId, ["name"] = "add", ["arguments"] = argumentsText },
                new JsonObject { ["type"] = "function_call_output", ["call_id"] = callId, ["output"] = "5" }),
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["name"] = "add", ["parameters"] = AddSchema.DeepClone() }),
            ["tool_choice"] = "none",
            ["temperature"] = 0,
            ["max_output_tokens"] = 4,
        });
        JsonElement chat = await PostChatAsync(new JsonObject
        {
            ["messages"] = new JsonArray(
                Message("user", "What is 2 + 3?"),
                new JsonObject
                {
                    ["role"] = "assistant", ["content"] = null,
                    ["tool_calls"] = new JsonArray(new JsonObject
                    {
                        ["id"] = callId, ["type"] = "function", ["function"] = new JsonObject { ["name"] = "add", ["arguments"] = argumentsText },
                    }),
                },
                new JsonObject { ["role"] = "tool", ["tool_call_id"] = callId, ["content"] = "5" }),
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "add", ["parameters"] = AddSchema.DeepClone() } }),
            ["tool_choice"] = "none",
            ["temperature"] = 0,
            ["max_completion_tokens"] = 4,
        });
        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), followUp.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
            followUp.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task Text_format_json_schema_in_its_flattened_shape_holds_the_reply_to_the_schema()
    {
        JsonElement response = await CreateAsync(new JsonObject
        {
            ["input"] = "Two numbers, please.",
            ["text"] = new JsonObject { ["format"] = new JsonObject { ["type"] = "json_schema", ["name"] = "pair", ["schema"] = AddSchema.DeepClone(), ["strict"] = true } },
            ["temperature"] = 0,
            ["max_output_tokens"] = 64,
        });

        Assert.Equal("completed", response.GetProperty("status").GetString());
        using JsonDocument reply = JsonDocument.Parse(response.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString()!);
        Assert.Equal(["a", "b"], reply.RootElement.EnumerateObject().Select(p => p.Name).Order());
        Assert.Equal("pair", response.GetProperty("text").GetProperty("format").GetProperty("name").GetString());
    }

    [Theory]
    [InlineData("""{"input": "hi", "frobnicate": 1}""", "frobnicate")]
    [InlineData("""{"input": "hi", "tools": [{"type": "web_search"}]}""", "tools[0].type")]
    [InlineData("""{"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]}""", "input[0].content[0].type")]
    [InlineData("""{"input": [{"role": "robot", "content": "hi"}]}""", "input[0].role")]
    [InlineData("""{"input": "hi", "text": {"format": {"type": "xml"}}}""", "text.format.type")]
    [InlineData("""{"input": "hi", "max_output_tokens": 0}""", "max_output_tokens")]
    [InlineData("""{}""", "input")]
    // Refused on chat's path, named as the Responses API names them.
    [InlineData("""{"input": "hi", "tools": [{"type": "function", "name": "f", "strict": true, "parameters": {"type": "object", "properties": {"x": {"type": "string", "pattern": "^a"}}, "required": ["x"], "additionalProperties": false}}]}""", "tools[0].parameters")]
    [InlineData("""{"input": "hi", "tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}}""", "tool_choice.name")]
    [InlineData("""{"input": "hi", "text": {"format": {"type": "json_schema", "name": "x", "schema": 5}}}""", "text.format.schema")]
    [InlineData("""{"input": "hi", "max_output_tokens": 100000}""", "max_output_tokens")]
    [InlineData("""{"input": "hi", "temperature": 9}""", "temperature")]
    public async Task Malformed_requests_are_refused_naming_the_field(string body, string param)
    {
        using var content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await Http.PostAsync("/v1/responses", content);
        JsonElement error = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error");

        Assert.Equal(400, (int)response.StatusCode);
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.DoesNotContain("response_format", error.GetProperty("message").GetString());
        Assert.DoesNotContain(".function.", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_stream_sends_the_events_in_order_and_the_same_text_as_the_unstreamed_response()
    {
        var request = new JsonObject { ["input"] = "Say something.", ["temperature"] = 0, ["max_output_tokens"] = 8 };
        JsonElement unstreamed = await CreateAsync((JsonObject)request.DeepClone());
        request["stream"] = true;

        List<(string Name, JsonElement Data)> events = await StreamAsync(request);

        Assert.Equal(
            ["response.created", "response.in_progress", "response.output_item.added", "response.content_part.added"],
            events.Take(4).Select(e => e.Name));
        Assert.Equal(
            ["response.output_text.done", "response.content_part.done", "response.output_item.done", "response.incomplete"],
            events.TakeLast(4).Select(e => e.Name));
        Assert.All(events.Skip(4).SkipLast(4), e => Assert.Equal("response.output_text.delta", e.Name));
        Assert.Equal(Enumerable.Range(0, events.Count), events.Select(e => e.Data.GetProperty("sequence_number").GetInt32()));
        Assert.All(events, e => Assert.Equal(e.Name, e.Data.GetProperty("type").GetString()));

        string deltas = string.Concat(events.Where(e => e.Name == "response.output_text.delta").Select(e => e.Data.GetProperty("delta").GetString()));
        string itemId = events[2].Data.GetProperty("item").GetProperty("id").GetString()!;
        Assert.All(events.Where(e => e.Name == "response.output_text.delta"), e => Assert.Equal(itemId, e.Data.GetProperty("item_id").GetString()));
        Assert.Equal(unstreamed.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString(), deltas);
        Assert.Equal(deltas, events[^4].Data.GetProperty("text").GetString());
        JsonElement final = events[^1].Data.GetProperty("response");
        Assert.Equal("incomplete", final.GetProperty("status").GetString());
        Assert.Equal(deltas, final.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());
        Assert.Equal(8, final.GetProperty("usage").GetProperty("output_tokens").GetInt32());
        Assert.Equal(final.GetProperty("id").GetString(), events[0].Data.GetProperty("response").GetProperty("id").GetString());
        Assert.Equal("in_progress", events[0].Data.GetProperty("response").GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_streamed_function_call_gives_an_item_whose_argument_deltas_join_to_the_unstreamed_call()
    {
        var request = new JsonObject
        {
            ["input"] = "Add 4 and 9.",
            ["tools"] = new JsonArray(new JsonObject { ["type"] = "function", ["name"] = "add", ["parameters"] = AddSchema.DeepClone(), ["strict"] = true }),
            ["tool_choice"] = "required",
            ["parallel_tool_calls"] = false,
            ["temperature"] = 0,
            ["max_output_tokens"] = 64,
        };
        JsonElement unstreamed = await CreateAsync((JsonObject)request.DeepClone());
        request["stream"] = true;

        List<(string Name, JsonElement Data)> events = await StreamAsync(request);

        Assert.Equal(["response.created", "response.in_progress", "response.output_item.added"], events.Take(3).Select(e => e.Name));
        Assert.Equal(["response.function_call_arguments.done", "response.output_item.done", "response.completed"], events.TakeLast(3).Select(e => e.Name));
        Assert.All(events.Skip(3).SkipLast(3), e => Assert.Equal("response.function_call_arguments.delta", e.Name));
        JsonElement added = events[2].Data.GetProperty("item");
        Assert.Equal("function_call", added.GetProperty("type").GetString());
        Assert.Equal("add", added.GetProperty("name").GetString());
        string arguments = string.Concat(events.Where(e => e.Name == "response.function_call_arguments.delta").Select(e => e.Data.GetProperty("delta").GetString()));
        Assert.Equal(unstreamed.GetProperty("output")[0].GetProperty("arguments").GetString(), arguments);
        Assert.Equal(arguments, events[^3].Data.GetProperty("arguments").GetString());
        JsonElement done = events[^2].Data.GetProperty("item");
        Assert.Equal(added.GetProperty("call_id").GetString(), done.GetProperty("call_id").GetString());
        Assert.Equal(arguments, done.GetProperty("arguments").GetString());
    }

    [Fact]
    public async Task A_stored_response_is_read_listed_continued_and_deleted()
    {
        JsonElement first = await CreateAsync(new JsonObject
        {
            ["input"] = new JsonArray(Message("developer", "Be brief."), Message("user", "Hello.")),
            ["temperature"] = 0,
            ["max_output_tokens"] = 5,
        });
        string id = first.GetProperty("id").GetString()!;
        string reply = first.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString()!;

        JsonElement stored = await Http.GetFromJsonAsync<JsonElement>($"/v1/responses/{id}");
        Assert.Equal(first.GetRawText(), stored.GetRawText());

        JsonElement items = await Http.GetFromJsonAsync<JsonElement>($"/v1/responses/{id}/input_items?order=asc");
        Assert.Equal("list", items.GetProperty("object").GetString());
        Assert.Equal(["developer", "user"], items.GetProperty("data").EnumerateArray().Select(i => i.GetProperty("role").GetString()));
        Assert.False(items.GetProperty("has_more").GetBoolean());
        Assert.Equal(items.GetProperty("data")[0].GetProperty("id").GetString(), items.GetProperty("first_id").GetString());
        JsonElement newestFirst = await Http.GetFromJsonAsync<JsonElement>($"/v1/responses/{id}/input_items?limit=1");
        Assert.Equal("user", newestFirst.GetProperty("data")[0].GetProperty("role").GetString());
        Assert.True(newestFirst.GetProperty("has_more").GetBoolean());

        // The second turn's prompt is the whole conversation: the first input, its reply, the new input.
        JsonElement second = await CreateAsync(new JsonObject { ["input"] = "And again?", ["previous_response_id"] = id, ["temperature"] = 0, ["max_output_tokens"] = 5 });
        JsonElement chat = await ChatAsync(new JsonArray(Message("developer", "Be brief."), Message("user", "Hello."), Message("assistant", reply), Message("user", "And again?")), 5);
        Assert.Equal(id, second.GetProperty("previous_response_id").GetString());
        Assert.Equal(chat.GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), second.GetProperty("usage").GetProperty("input_tokens").GetInt32());
        Assert.Equal(chat.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString(),
            second.GetProperty("output")[0].GetProperty("content")[0].GetProperty("text").GetString());

        using (HttpResponseMessage deleted = await Http.DeleteAsync($"/v1/responses/{id}"))
        {
            JsonElement body = await deleted.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(id, body.GetProperty("id").GetString());
            Assert.True(body.GetProperty("deleted").GetBoolean());
        }
        using HttpResponseMessage gone = await Http.GetAsync($"/v1/responses/{id}");
        Assert.Equal(404, (int)gone.StatusCode);
        Assert.Equal("invalid_request_error", (await gone.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("type").GetString());
    }

    [Fact]
    public async Task A_response_not_stored_cannot_be_read_or_continued()
    {
        JsonElement response = await CreateAsync(new JsonObject { ["input"] = "Hi.", ["store"] = false, ["temperature"] = 0, ["max_output_tokens"] = 2 });
        string id = response.GetProperty("id").GetString()!;
        Assert.False(response.GetProperty("store").GetBoolean());

        using HttpResponseMessage read = await Http.GetAsync($"/v1/responses/{id}");
        Assert.Equal(404, (int)read.StatusCode);
        using HttpResponseMessage continued = await Http.PostAsJsonAsync("/v1/responses", new JsonObject { ["input"] = "More.", ["previous_response_id"] = id });
        Assert.Equal(404, (int)continued.StatusCode);
        Assert.Equal("previous_response_id", (await continued.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetProperty("param").GetString());
    }

    private async Task<JsonElement> CreateAsync(JsonObject body)
    {
        using HttpResponseMessage response = await Http.PostAsJsonAsync("/v1/responses", body);
        JsonElement json = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.IsSuccessStatusCode, json.GetRawText());
        return json;
    }

    private Task<JsonElement> ChatAsync(JsonArray messages, int maxTokens) =>
        PostChatAsync(new JsonObject { ["messages"] = messages, ["temperature"] = 0, ["max_completion_tokens"] = maxTokens });

    private async Task<JsonElement> PostChatAsync(JsonObject body)
    {
        using HttpResponseMessage response = await Http.PostAsJsonAsync("/v1/chat/completions", body);
        JsonElement json = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(response.IsSuccessStatusCode, json.GetRawText());
        return json;
    }

    private async Task<List<(string Name, JsonElement Data)>> StreamAsync(JsonObject body)
    {
        using HttpResponseMessage response = await Http.PostAsJsonAsync("/v1/responses", body);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return ResponsesServer.ParseEvents(await response.Content.ReadAsStringAsync());
    }

    private static JsonObject Message(string role, string content) => new() { ["role"] = role, ["content"] = content };
}
