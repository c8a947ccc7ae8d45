using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests.ToolCalling;

/// <summary>One server per model for a class: loading a fixture's tokenizer takes a moment.</summary>
public abstract class FixtureServer(string model) : IAsyncLifetime
{
    public RunningServer Server { get; private set; } = null!;

    public async Task InitializeAsync() =>
        Server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(model), "--kv-cache-memory", "64MiB"]);

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
    }
}

public sealed class Qwen3Server() : FixtureServer("qwen3-random-2l-64d");

public sealed class Llama3Server() : FixtureServer("llama3-random-2l-64d");

/// <summary>GPT-2's vocabulary with 1024 positions: the default tool prompt does not fit the 128 of gpt2-random-2l-64d.</summary>
public sealed class Gpt2Server() : FixtureServer("tiny-gpt2");

/// <summary>
/// The Llama 3 fixture's weights and tokenizer under a template shaped like Llama 3.1's: it takes tools and writes
/// calls as <c>{"name": ..., "parameters": ...}</c>, with no &lt;tool_call&gt; marker. No fixture has Llama 3.1's own
/// template; this one has what picks the family.
/// </summary>
public sealed class Llama31Server : IAsyncLifetime
{
    private const string Template =
        "{{- bos_token }}{%- if tools %}<|start_header_id|>system<|end_header_id|>\n\nRespond with a JSON function call: " +
        "{\"name\": function name, \"parameters\": dictionary of arguments}.\n{%- for t in tools %}\n{{ t | tojson }}{%- endfor %}<|eot_id|>{%- endif %}" +
        "{%- for message in messages %}<|start_header_id|>{{ message.role }}<|end_header_id|>\n\n" +
        "{%- if message.tool_calls %}{%- for tc in message.tool_calls %}{\"name\": \"{{ tc.function.name }}\", \"parameters\": {{ tc.function.arguments | tojson }}}{%- endfor %}" +
        "{%- else %}{{ message.content | trim }}{%- endif %}<|eot_id|>{%- endfor %}" +
        "{%- if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{%- endif %}";

    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"llmserver-llama31-{Guid.NewGuid():N}");

    public RunningServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        string fixture = TestFixtures.ModelDirectory("llama3-random-2l-64d");
        Directory.CreateDirectory(_directory);
        foreach (string file in new[] { "config.json", "generation_config.json", "model.safetensors", "tokenizer.json" })
        {
            File.Copy(Path.Combine(fixture, file), Path.Combine(_directory, file));
        }
        JsonObject config = JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "tokenizer_config.json")))!.AsObject();
        config["chat_template"] = Template;
        File.WriteAllText(Path.Combine(_directory, "tokenizer_config.json"), config.ToJsonString());
        Server = await RunningServer.StartAsync(["--model", _directory, "--served-model-name", "llama31-random", "--kv-cache-memory", "64MiB"]);
    }

    public async Task DisposeAsync()
    {
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>Llama 3.1's JSON calls: constrained under required and named, free (and held back until they parse) under auto.</summary>
public sealed class Llama31JsonToolCallingTests(Llama31Server fixture) : ToolCallingHttpTests(fixture.Server), IClassFixture<Llama31Server>;

/// <summary>Qwen3's template takes tools and writes Hermes calls; its tokenizer has &lt;tool_call&gt; as one token.</summary>
public sealed class Qwen3ToolCallingTests(Qwen3Server fixture) : HermesToolCallingHttpTests(fixture.Server), IClassFixture<Qwen3Server>;

/// <summary>Llama 3's template takes no tools: the default prompt describes them and calls are read as Hermes calls.</summary>
public sealed class Llama3ToolCallingTests(Llama3Server fixture) : HermesToolCallingHttpTests(fixture.Server), IClassFixture<Llama3Server>;

/// <summary>GPT-2 has no chat template at all (the server's ChatML default): the default tool prompt again.</summary>
public sealed class Gpt2ToolCallingTests(Gpt2Server fixture) : HermesToolCallingHttpTests(fixture.Server), IClassFixture<Gpt2Server>
{
    public static TheoryData<string, string, string> Refusals => new()
    {
        { """{"tools": [{"type": "function", "function": {"name": "get weather"}}]}""", "tools[0].function.name", "does not match pattern" },
        { """{"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "f"}}]}""", "tools[1].function.name", "more than once" },
        { """{"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": {"type": "function", "function": {"name": "g"}}}""", "tool_choice.function.name", "'g'" },
        { """{"functions": [{"name": "f"}], "function_call": {"name": "g"}}""", "function_call.name", "'g'" },
        { """{"tools": [{"type": "function", "function": {"name": "f"}}, {"type": "function", "function": {"name": "g", "strict": true, "parameters": {"type": "object", "properties": {"city": {"type": "string", "pattern": "^[A-Z]"}}, "required": ["city"], "additionalProperties": false}}}]}""",
            "tools[1].function.parameters", "'pattern' at $.properties.city" },
        { """{"tools": [{"type": "function", "function": {"name": "f"}}], "functions": [{"name": "f"}]}""", "functions", "not both" },
        { """{"tools": [{"type": "custom", "custom": {"name": "f"}}]}""", "tools[0].type", "'custom'" },
        { """{"tools": [{"type": "function", "function": {"name": "f", "parameters": "none"}}]}""", "tools[0].function.parameters", "expected an object" },
    };

    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task Malformed_tools_are_refused_naming_the_field(string fields, string param, string message)
    {
        JsonObject body = JsonNode.Parse(fields)!.AsObject();
        body["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" });
        body["max_tokens"] = 2;

        using HttpResponseMessage response = await Server.Http.PostAsJsonAsync("/v1/chat/completions", body);

        string text = await response.Content.ReadAsStringAsync();
        Assert.Equal(400, (int)response.StatusCode);
        JsonElement error = JsonDocument.Parse(text).RootElement.GetProperty("error");
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Contains(message, error.GetProperty("message").GetString());
    }
}

/// <summary>
/// Tool calling through the real server on random-weight models at temperature 1.0: whatever the weights, calls
/// under "required" or a named function parse and match their function's schema, streamed and non-streamed replies
/// of one seed agree exactly, and nothing of a call reaches content.
/// </summary>
public abstract class ToolCallingHttpTests(RunningServer server)
{
    protected RunningServer Server { get; } = server;

    /// <summary>Schemas whose every string is an enum: a random model at temperature 1 would otherwise write one string for ever.</summary>
    private static readonly JsonObject WeatherSchema = JsonNode.Parse("""
        {"type": "object", "properties": {
            "city": {"type": "string", "enum": ["Paris", "Lima", "Oslo"]},
            "days": {"type": "integer"},
            "detail": {"type": "object", "properties": {"unit": {"enum": ["c", "f"]}, "wind": {"type": "boolean"}},
                       "required": ["unit", "wind"], "additionalProperties": false}},
         "required": ["city", "days", "detail"], "additionalProperties": false}
        """)!.AsObject();

    private static readonly JsonObject AddSchema = JsonNode.Parse("""
        {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "number"}}, "required": ["a", "b"], "additionalProperties": false}
        """)!.AsObject();

    private static readonly Dictionary<string, JsonObject> Schemas = new() { ["get_weather"] = WeatherSchema, ["add"] = AddSchema };

    /// <param name="maxTokens">Null leaves max_tokens out: the reply may fill the context.</param>
    protected static JsonObject Request(JsonNode toolChoice, int seed, bool parallel, int? maxTokens = null) => new()
    {
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "What is the weather in Paris, and what is 2 + 2?" }),
        ["tools"] = new JsonArray(Schemas.Select(s => (JsonNode)new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject { ["name"] = s.Key, ["description"] = $"The {s.Key} tool.", ["parameters"] = s.Value.DeepClone(), ["strict"] = true },
        }).ToArray()),
        ["tool_choice"] = toolChoice,
        ["parallel_tool_calls"] = parallel,
        ["temperature"] = 1.0,
        ["seed"] = seed,
        ["max_tokens"] = maxTokens,
    };

    private static JsonObject WithoutNulls(JsonObject body)
    {
        foreach (string key in body.Where(p => p.Value is null).Select(p => p.Key).ToArray())
        {
            body.Remove(key);
        }
        return body;
    }

    protected async Task<JsonElement> PostAsync(JsonObject body)
    {
        using HttpResponseMessage response = await Server.Http.PostAsJsonAsync("/v1/chat/completions", WithoutNulls(body));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The streamed reply of choice 0 put together, asserting each chunk has OpenAI's shape on the way.</summary>
    protected async Task<(string? Content, List<(string Name, string Arguments)> Calls, string Finish)> StreamAsync(JsonObject body) =>
        (await StreamChoicesAsync(body))[0];

    /// <summary>Each streamed choice put together, by index.</summary>
    protected async Task<Dictionary<int, (string? Content, List<(string Name, string Arguments)> Calls, string Finish)>> StreamChoicesAsync(JsonObject body)
    {
        JsonObject streamed = body.DeepClone().AsObject();
        streamed["stream"] = true;
        using HttpResponseMessage response = await Server.Http.PostAsJsonAsync("/v1/chat/completions", WithoutNulls(streamed));
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);

        var contents = new Dictionary<int, StringBuilder>();
        var calls = new Dictionary<int, List<(string Name, StringBuilder Arguments)>>();
        var finishes = new Dictionary<int, string>();
        var ids = new HashSet<string>();
        foreach (string line in text.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
        {
            JsonElement choices = JsonDocument.Parse(line["data: ".Length..]).RootElement.GetProperty("choices");
            if (choices.GetArrayLength() == 0)
            {
                continue;
            }
            JsonElement choice = Assert.Single(choices.EnumerateArray());
            int at = choice.GetProperty("index").GetInt32();
            List<(string Name, StringBuilder Arguments)> choiceCalls = calls.TryGetValue(at, out var known) ? known : calls[at] = [];
            JsonElement delta = choice.GetProperty("delta");
            if (delta.TryGetProperty("content", out JsonElement part) && part.GetString() is { Length: > 0 } piece)
            {
                (contents.TryGetValue(at, out StringBuilder? content) ? content : contents[at] = new StringBuilder()).Append(piece);
            }
            if (delta.TryGetProperty("tool_calls", out JsonElement toolCalls))
            {
                JsonElement call = Assert.Single(toolCalls.EnumerateArray());
                int index = call.GetProperty("index").GetInt32();
                JsonElement function = call.GetProperty("function");
                if (call.TryGetProperty("id", out JsonElement id))
                {
                    // A call's first delta: id, type and name once, arguments empty.
                    Assert.Equal(choiceCalls.Count, index);
                    Assert.StartsWith("call_", id.GetString());
                    Assert.True(ids.Add(id.GetString()!));
                    Assert.Equal("function", call.GetProperty("type").GetString());
                    Assert.Equal("", function.GetProperty("arguments").GetString());
                    choiceCalls.Add((function.GetProperty("name").GetString()!, new StringBuilder()));
                }
                else
                {
                    Assert.False(call.TryGetProperty("type", out _));
                    Assert.False(function.TryGetProperty("name", out _));
                    choiceCalls[index].Arguments.Append(function.GetProperty("arguments").GetString());
                }
            }
            if (choice.GetProperty("finish_reason").ValueKind == JsonValueKind.String)
            {
                finishes[at] = choice.GetProperty("finish_reason").GetString()!;
            }
        }
        return finishes.Keys.ToDictionary(at => at, at => (contents.TryGetValue(at, out StringBuilder? c) ? c.ToString() : null,
            calls[at].Select(c => (c.Name, c.Arguments.ToString())).ToList(), finishes[at]));
    }

    protected static List<(string Name, string Arguments)> Calls(JsonElement message) =>
        message.TryGetProperty("tool_calls", out JsonElement calls)
            ? calls.EnumerateArray().Select(c => (c.GetProperty("function").GetProperty("name").GetString()!, c.GetProperty("function").GetProperty("arguments").GetString()!)).ToList()
            : [];

    protected static void AssertValidCalls(JsonElement message, int? expectedCount = null)
    {
        JsonElement calls = message.GetProperty("tool_calls");
        Assert.True(calls.GetArrayLength() > 0);
        if (expectedCount is { } count)
        {
            Assert.Equal(count, calls.GetArrayLength());
        }
        foreach (JsonElement call in calls.EnumerateArray())
        {
            Assert.StartsWith("call_", call.GetProperty("id").GetString());
            Assert.Equal("function", call.GetProperty("type").GetString());
            string name = call.GetProperty("function").GetProperty("name").GetString()!;
            string arguments = call.GetProperty("function").GetProperty("arguments").GetString()!;
            using JsonDocument parsed = JsonDocument.Parse(arguments);
            SchemaCheck.AssertValid(Schemas[name], parsed.RootElement, name);
        }
    }

    [Fact]
    public async Task Required_calls_parse_and_match_their_schema_at_temperature_one()
    {
        for (int seed = 1; seed <= 4; seed++)
        {
            JsonObject body = Request("required", seed, parallel: false);
            body["n"] = 2;
            JsonElement reply = await PostAsync(body);

            foreach (JsonElement choice in reply.GetProperty("choices").EnumerateArray())
            {
                Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
                Assert.Equal(JsonValueKind.Null, choice.GetProperty("message").GetProperty("content").ValueKind);
                AssertValidCalls(choice.GetProperty("message"), expectedCount: 1);
            }
        }
    }

    [Fact]
    public async Task Parallel_calls_streamed_and_not_agree_exactly_for_a_seed()
    {
        int mostCalls = 0;
        for (int seed = 1; seed <= 3; seed++)
        {
            JsonObject body = Request("required", seed, parallel: true);
            JsonElement choice = (await PostAsync(body)).GetProperty("choices")[0];
            (string? content, List<(string Name, string Arguments)> calls, string finish) = await StreamAsync(body);

            Assert.Equal(choice.GetProperty("finish_reason").GetString(), finish);
            Assert.Null(content);
            Assert.Equal(Calls(choice.GetProperty("message")), calls);
            if (finish == "tool_calls")
            {
                AssertValidCalls(choice.GetProperty("message"));
            }
            mostCalls = Math.Max(mostCalls, calls.Count);
        }
        // The random model stops after a call only now and then: some seed must have made several.
        Assert.True(mostCalls > 1, "no reply made more than one call");
    }

    [Fact]
    public async Task Each_of_n_streamed_choices_has_its_own_calls_as_not_streamed()
    {
        JsonObject body = Request("required", seed: 11, parallel: false);
        body["n"] = 3;
        JsonElement reply = await PostAsync(body);
        var streamed = await StreamChoicesAsync(body);

        Assert.Equal(3, streamed.Count);
        foreach (JsonElement choice in reply.GetProperty("choices").EnumerateArray())
        {
            (string? content, List<(string Name, string Arguments)> calls, string finish) = streamed[choice.GetProperty("index").GetInt32()];
            Assert.Null(content);
            Assert.Equal(Calls(choice.GetProperty("message")), calls);
            Assert.Equal("tool_calls", finish);
        }
        // Three seeds (11, 12, 13): the choices are not one reply thrice.
        Assert.True(streamed.Values.Select(c => c.Calls[0].Arguments).Distinct().Count() > 1);
    }

    [Fact]
    public async Task A_named_function_is_the_one_call()
    {
        JsonObject named = new() { ["type"] = "function", ["function"] = new JsonObject { ["name"] = "add" } };
        for (int seed = 1; seed <= 3; seed++)
        {
            JsonElement choice = (await PostAsync(Request(named.DeepClone(), seed, parallel: true))).GetProperty("choices")[0];

            Assert.Equal("tool_calls", choice.GetProperty("finish_reason").GetString());
            AssertValidCalls(choice.GetProperty("message"), expectedCount: 1);
            Assert.Equal("add", Calls(choice.GetProperty("message"))[0].Name);
        }
    }

    [Fact]
    public async Task Legacy_functions_answer_with_function_call()
    {
        JsonObject body = Request("none", seed: 7, parallel: false);
        body.Remove("tools");
        body.Remove("tool_choice");
        body.Remove("parallel_tool_calls");
        body["functions"] = new JsonArray(new JsonObject { ["name"] = "add", ["parameters"] = AddSchema.DeepClone(), ["strict"] = true });
        body["function_call"] = new JsonObject { ["name"] = "add" };

        JsonElement choice = (await PostAsync(body)).GetProperty("choices")[0];

        Assert.Equal("function_call", choice.GetProperty("finish_reason").GetString());
        JsonElement message = choice.GetProperty("message");
        Assert.False(message.TryGetProperty("tool_calls", out _));
        JsonElement call = message.GetProperty("function_call");
        Assert.Equal("add", call.GetProperty("name").GetString());
        using JsonDocument arguments = JsonDocument.Parse(call.GetProperty("arguments").GetString()!);
        SchemaCheck.AssertValid(AddSchema, arguments.RootElement, "add");
    }

    [Fact]
    public async Task Auto_replies_streamed_and_not_agree_and_keep_call_text_out_of_content()
    {
        for (int seed = 1; seed <= 3; seed++)
        {
            JsonObject body = Request("auto", seed, parallel: true, maxTokens: 40);
            JsonElement choice = (await PostAsync(body)).GetProperty("choices")[0];
            (string? content, List<(string Name, string Arguments)> calls, string finish) = await StreamAsync(body);

            JsonElement message = choice.GetProperty("message");
            string? expectedContent = message.GetProperty("content").GetString();
            Assert.Equal(expectedContent, content ?? (expectedContent == "" ? "" : null));
            Assert.Equal(Calls(message), calls);
            Assert.Equal(choice.GetProperty("finish_reason").GetString(), finish);
            Assert.DoesNotContain("</tool_call>", expectedContent ?? "");
        }
    }

    [Fact]
    public async Task Tool_choice_none_parses_nothing()
    {
        JsonElement choice = (await PostAsync(Request("none", seed: 3, parallel: true, maxTokens: 8))).GetProperty("choices")[0];

        Assert.False(choice.GetProperty("message").TryGetProperty("tool_calls", out _));
        Assert.Equal(JsonValueKind.String, choice.GetProperty("message").GetProperty("content").ValueKind);
    }
}

/// <summary>The families whose calls start with &lt;tool_call&gt; (Hermes and the default tool prompt): under "auto" the grammar takes over there.</summary>
public abstract class HermesToolCallingHttpTests(RunningServer server) : ToolCallingHttpTests(server)
{
    /// <summary>
    /// The random model writes "&lt;tool_call&gt;" only when pushed: every token of the marker gets the same large bias, so
    /// the free text is made of the marker's pieces (what the parser must hold back and then give out as content)
    /// until they happen to line up; from there on the grammar writes a valid call.
    /// </summary>
    [Fact]
    public async Task Under_auto_a_started_call_is_valid_and_none_of_it_reaches_content()
    {
        using HttpResponseMessage tokenized = await Server.Http.PostAsJsonAsync("/tokenize", new JsonObject { ["prompt"] = "<tool_call>", ["add_special_tokens"] = false });
        JsonElement markerTokens = (await tokenized.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("tokens");
        int called = 0;
        for (int seed = 1; seed <= 6 && called == 0; seed++)
        {
            JsonObject body = Request("auto", seed, parallel: false);
            body["logit_bias"] = new JsonObject(markerTokens.EnumerateArray().Select(t => KeyValuePair.Create(t.GetInt32().ToString(), (JsonNode?)100)));
            JsonElement choice = (await PostAsync(body)).GetProperty("choices")[0];
            (string? content, List<(string Name, string Arguments)> calls, string finish) = await StreamAsync(body);

            JsonElement message = choice.GetProperty("message");
            string? expectedContent = message.GetProperty("content").GetString();
            Assert.Equal(expectedContent, content ?? (expectedContent == "" ? "" : null));
            Assert.Equal(Calls(message), calls);
            Assert.Equal(choice.GetProperty("finish_reason").GetString(), finish);
            Assert.DoesNotContain("<tool_call>", expectedContent ?? "");
            // A call started near the end of the context is cut there: "length", as OpenAI has it.
            if (calls.Count > 0 && finish == "tool_calls")
            {
                called++;
                AssertValidCalls(message, expectedCount: 1);
            }
        }
        Assert.True(called > 0, "no seed made a whole call");
    }
}
