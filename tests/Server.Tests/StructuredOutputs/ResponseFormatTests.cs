using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tests.StructuredOutput;

namespace LlmServer.Tests.StructuredOutputs;

/// <summary>
/// response_format over HTTP on the Qwen3 fixture (random weights) at temperature 1.0: json_schema replies parse and
/// validate, json_object replies are objects, streamed and non-streamed replies of one seed are the same text, and a
/// schema outside the subset is a 400 that names the keyword.
/// </summary>
public sealed class ResponseFormatTests : IAsyncLifetime
{
    private const string Model = "qwen3-random-2l-64d";
    private RunningServer _server = null!;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB"]);

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private static JsonObject Chat(JsonNode responseFormat, int seed, int n = 1, bool stream = false) => new()
    {
        ["model"] = Model,
        ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "Describe a person as JSON." }),
        ["temperature"] = 1.0,
        ["seed"] = seed,
        ["n"] = n,
        ["max_tokens"] = 200,
        ["stream"] = stream,
        ["response_format"] = responseFormat,
    };

    private static JsonObject JsonSchema(string schemaName, bool strict = true) => new()
    {
        ["type"] = "json_schema",
        ["json_schema"] = new JsonObject { ["name"] = schemaName, ["strict"] = strict, ["schema"] = JsonNode.Parse(TestSchemas.ByName[schemaName]) },
    };

    [Theory]
    [InlineData("nested")]
    [InlineData("tree")]
    [InlineData("enums")]
    [InlineData("anyof")]
    public async Task Json_schema_replies_parse_and_satisfy_the_schema(string schemaName)
    {
        JsonElement schema = TestSchemas.Parse(schemaName);
        JsonObject response = await PostAsync("/v1/chat/completions", Chat(JsonSchema(schemaName), seed: 7, n: 4));

        foreach (JsonNode? choice in response["choices"]!.AsArray())
        {
            string content = (string)choice!["message"]!["content"]!;
            Assert.Equal("stop", (string)choice["finish_reason"]!);
            using JsonDocument parsed = JsonDocument.Parse(content);
            Assert.Null(SchemaSubsetValidator.Check(parsed.RootElement, schema, schema));
        }
    }

    [Fact]
    public async Task Streamed_and_non_streamed_replies_of_one_seed_are_the_same_text()
    {
        for (int seed = 1; seed <= 3; seed++)
        {
            JsonObject whole = await PostAsync("/v1/chat/completions", Chat(JsonSchema("nested"), seed));
            string streamed = await StreamedContentAsync(Chat(JsonSchema("nested"), seed, stream: true));
            Assert.Equal((string)whole["choices"]![0]!["message"]!["content"]!, streamed);
        }
    }

    [Fact]
    public async Task Json_object_gives_an_object_on_chat_and_on_completions()
    {
        JsonObject chat = await PostAsync("/v1/chat/completions", Chat(new JsonObject { ["type"] = "json_object" }, seed: 3));
        using (JsonDocument parsed = JsonDocument.Parse((string)chat["choices"]![0]!["message"]!["content"]!))
        {
            Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
        }

        JsonObject completion = await PostAsync("/v1/completions", new JsonObject
        {
            ["model"] = Model, ["prompt"] = "A JSON object:", ["temperature"] = 1.0, ["seed"] = 5, ["max_tokens"] = 100,
            ["response_format"] = new JsonObject { ["type"] = "json_object" },
        });
        using (JsonDocument parsed = JsonDocument.Parse((string)completion["choices"]![0]!["text"]!))
        {
            Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
        }
    }

    [Fact]
    public async Task A_short_max_tokens_still_gives_a_whole_document()
    {
        // Its shortest document takes 63 bytes; at temperature 1.0 on random weights its strings run on far longer.
        JsonObject request = Chat(JsonSchema("nested"), seed: 11);
        request["max_tokens"] = 90;
        JsonObject response = await PostAsync("/v1/chat/completions", request);
        JsonElement schema = TestSchemas.Parse("nested");
        using JsonDocument parsed = JsonDocument.Parse((string)response["choices"]![0]!["message"]!["content"]!);
        Assert.Null(SchemaSubsetValidator.Check(parsed.RootElement, schema, schema));
        Assert.True((int)response["usage"]!["completion_tokens"]! <= 90);
        Assert.Equal("stop", (string)response["choices"]![0]!["finish_reason"]!);
    }

    [Fact]
    public async Task A_strict_schema_outside_the_subset_is_a_400_naming_the_keyword_and_a_lenient_one_is_served()
    {
        JsonNode schema = JsonNode.Parse("""{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]+$"}},"required":["code"],"additionalProperties":false}""")!;
        var format = new JsonObject { ["type"] = "json_schema", ["json_schema"] = new JsonObject { ["name"] = "code", ["strict"] = true, ["schema"] = schema.DeepClone() } };
        using HttpResponseMessage refused = await _server.Http.PostAsJsonAsync("/v1/chat/completions", Chat(format.DeepClone(), seed: 1));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        JsonNode error = (await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]!;
        Assert.Equal("response_format", (string)error["param"]!);
        Assert.Contains("'pattern'", (string)error["message"]!);
        Assert.Contains("$.properties.code", (string)error["message"]!);

        format["json_schema"]!["strict"] = false;
        JsonObject served = await PostAsync("/v1/chat/completions", Chat(format.DeepClone(), seed: 1));
        using JsonDocument parsed = JsonDocument.Parse((string)served["choices"]![0]!["message"]!["content"]!);
        Assert.Equal(JsonValueKind.String, parsed.RootElement.GetProperty("code").ValueKind);
    }

    [Fact]
    public async Task With_tools_under_auto_the_reply_is_either_the_formats_document_or_valid_calls()
    {
        JsonElement schema = TestSchemas.Parse("flat");
        var kinds = new HashSet<string>();
        for (int seed = 0; seed < 6; seed++)
        {
            JsonObject request = Chat(JsonSchema("flat"), seed);
            request["tools"] = JsonNode.Parse("""
                [{"type":"function","function":{"name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"],"additionalProperties":false},"strict":true}}]
                """);
            request["tool_choice"] = "auto";
            // Qwen's <tool_call> token, favoured in half the requests so that both kinds of reply occur.
            if (seed % 2 == 0)
            {
                request["logit_bias"] = new JsonObject { ["151657"] = 100 };
            }

            JsonNode choice = (await PostAsync("/v1/chat/completions", request))["choices"]![0]!;
            if (choice["message"]!["tool_calls"] is JsonArray calls && calls.Count > 0)
            {
                kinds.Add("calls");
                Assert.Equal("tool_calls", (string)choice["finish_reason"]!);
                foreach (JsonNode? call in calls)
                {
                    using JsonDocument arguments = JsonDocument.Parse((string)call!["function"]!["arguments"]!);
                    Assert.Equal(JsonValueKind.String, arguments.RootElement.GetProperty("q").ValueKind);
                }
            }
            else
            {
                kinds.Add("document");
                using JsonDocument parsed = JsonDocument.Parse((string)choice["message"]!["content"]!);
                Assert.Null(SchemaSubsetValidator.Check(parsed.RootElement, schema, schema));
            }
        }

        Assert.Equal(["calls", "document"], kinds.Order());
    }

    [Theory]
    [InlineData("""{"type":"json_schema"}""", "response_format.json_schema")]
    [InlineData("""{"type":"json_schema","json_schema":{"schema":{"type":"object"}}}""", "response_format.json_schema.name")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"a b","schema":{"type":"object"}}}""", "response_format.json_schema.name")]
    [InlineData("""{"type":"json_schema","json_schema":{"name":"x","schema":"object"}}""", "response_format.json_schema.schema")]
    public async Task Malformed_json_schema_formats_are_400s_naming_the_field(string format, string param)
    {
        using HttpResponseMessage response = await _server.Http.PostAsJsonAsync("/v1/chat/completions", Chat(JsonNode.Parse(format)!, seed: 1));
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(param, (string)(await response.Content.ReadFromJsonAsync<JsonObject>())!["error"]!["param"]!);
    }

    private async Task<JsonObject> PostAsync(string path, JsonNode body)
    {
        using HttpResponseMessage response = await _server.Http.PostAsJsonAsync(path, body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonNode.Parse(text)!.AsObject();
    }

    private async Task<string> StreamedContentAsync(JsonNode body)
    {
        using HttpResponseMessage response = await _server.Http.PostAsJsonAsync("/v1/chat/completions", body);
        string content = "";
        foreach (string line in (await response.Content.ReadAsStringAsync()).Split('\n'))
        {
            if (line.StartsWith("data: {", StringComparison.Ordinal))
            {
                content += (string?)JsonNode.Parse(line[6..])!["choices"]!.AsArray().FirstOrDefault()?["delta"]?["content"] ?? "";
            }
        }

        return content;
    }
}
