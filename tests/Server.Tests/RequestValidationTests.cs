using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace LlmServer.Tests;

/// <summary>
/// What a real client gets wrong, answered as OpenAI answers it: a 400 naming the parameter, never
/// a 500 and never a 200 that quietly ignored the mistake; and what it gets right still works.
/// </summary>
[Collection(ServerCollection.Name)]
public class RequestValidationTests(ServerFixture server)
{
    private const string Hi = "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]";

    private static string Chat(string fields) => $"{{\"model\": \"{ServerFixture.ModelName}\", {fields}}}";

    private static string Completion(string fields) => $"{{\"model\": \"{ServerFixture.ModelName}\", {fields}}}";

    public static TheoryData<string, string, string, string> Refused() => new()
    {
        // Text that is not Unicode: a JavaScript app that cut a string inside an emoji sends a lone surrogate.
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": \"user\", \"content\": \"a\\ud800b\"}]"), "messages[0].content", "invalid_value" },
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"\\udc00\"}]}]"), "messages[0].content[0].text", "invalid_value" },
        { "/v1/completions", Completion("\"prompt\": \"a\\ud800b\""), "prompt", "invalid_value" },
        { "/v1/completions", Completion("\"prompt\": [\"fine\", \"a\\ud83d\"]"), "prompt[1]", "invalid_value" },
        { "/v1/completions", Completion("\"prompt\": \"hi\", \"stop\": \"\\ud800\""), "stop", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"stop\": [\"ok\", \"\\ude00\"]"), "stop[1]", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"user\": \"\\ud800\""), "user", "invalid_value" },
        { "/tokenize", Completion("\"prompt\": \"\\ud800\""), "prompt", "invalid_value" },

        // Unknown top-level fields: a typo must not silently fall back to the default.
        { "/v1/chat/completions", Chat($"{Hi}, \"max_tokenz\": 5"), "max_tokenz", "unknown_parameter" },
        { "/v1/completions", Completion("\"prompt\": \"hi\", \"max_tokenz\": 5"), "max_tokenz", "unknown_parameter" },
        { "/v1/chat/completions", Chat($"{Hi}, \"repetition_penalty\": 1.2"), "repetition_penalty", "unknown_parameter" },
        { "/v1/completions", Completion("\"prompt\": \"hi\", \"stream\": true, \"stream_options\": {\"include_usgae\": true}"), "stream_options.include_usgae", "unknown_parameter" },

        // Features this text model does not have.
        { "/v1/chat/completions", Chat($"{Hi}, \"functions\": [{{\"name\": \"f\", \"parameters\": {{}}}}], \"function_call\": \"always\""), "function_call", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"functions\": [{{\"name\": \"f.g\"}}]"), "functions[0].name", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"function_call\": \"auto\""), "function_call", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"tools\": \"x\""), "tools", "invalid_type" },
        { "/v1/chat/completions", Chat($"{Hi}, \"tools\": [\"x\"], \"tool_choice\": \"none\""), "tools[0]", "invalid_type" },
        { "/v1/chat/completions", Chat($"{Hi}, \"tools\": [{{\"type\": \"function\"}}]"), "tools[0].function", "missing_required_parameter" },
        { "/v1/chat/completions", Chat($"{Hi}, \"tools\": [{{\"type\": \"function\", \"function\": {{\"name\": \"f\"}}}}], \"tool_choice\": \"sometimes\""), "tool_choice", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"tool_choice\": \"auto\""), "tool_choice", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"tool_choice\": \"none\""), "tool_choice", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"response_format\": \"json\""), "response_format", "invalid_type" },
        { "/v1/chat/completions", Chat($"{Hi}, \"response_format\": {{\"type\": \"json_schema\", \"json_schema\": {{\"name\": \"x\", \"strict\": true, \"schema\": {{\"type\": \"string\", \"format\": \"email\"}}}}}}"), "response_format", "invalid_json_schema" },
        { "/v1/chat/completions", Chat($"{Hi}, \"response_format\": {{\"type\": \"yaml\"}}"), "response_format.type", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"modalities\": [\"text\", \"audio\"], \"audio\": {{\"voice\": \"alloy\", \"format\": \"wav\"}}"), "modalities", "unsupported_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"audio\": {{\"voice\": \"alloy\", \"format\": \"wav\"}}"), "audio", "unsupported_parameter" },
        { "/v1/chat/completions", Chat($"{Hi}, \"reasoning_effort\": \"high\""), "reasoning_effort", "unsupported_parameter" },
        { "/v1/chat/completions", Chat($"{Hi}, \"verbosity\": \"low\""), "verbosity", "unsupported_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"web_search_options\": {{}}"), "web_search_options", "unsupported_parameter" },
        { "/v1/chat/completions", Chat($"{Hi}, \"service_tier\": \"fastest\""), "service_tier", "invalid_value" },

        // Messages with nothing to say, or carrying tool calls where none can be.
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": \"user\", \"content\": null}]"), "messages[0].content", "invalid_type" },
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": \"user\"}]"), "messages[0].content", "missing_required_parameter" },
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": \"user\", \"content\": []}]"), "messages[0].content", "empty_array" },
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\", " +
            "\"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"add\", \"arguments\": \"{}\"}}]}]"), "messages[0].tool_calls", "invalid_value" },
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": \"assistant\", \"content\": null, \"function_call\": {\"name\": \"f\", \"arguments\": \"{}\"}}]"),
            "messages[0].function_call", "unsupported_parameter" },

        // The wrong type or parameter named in the message.
        { "/v1/chat/completions", Chat("\"messages\": [{\"role\": 5, \"content\": \"hi\"}]"), "messages[0].role", "invalid_type" },
        { "/v1/chat/completions", Chat($"{Hi}, \"max_completion_tokens\": -3"), "max_completion_tokens", "invalid_value" },
        { "/v1/chat/completions", Chat($"{Hi}, \"max_completion_tokens\": 100000"), "max_completion_tokens", "context_length_exceeded" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task A_mistake_gets_a_400_naming_the_parameter(string path, string json, string param, string code)
    {
        var (status, body) = await server.PostRawAsync(path, json);

        Assert.Equal(400, status);
        JsonElement error = body.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        Assert.Contains(param.Split('[', '.')[0], error.GetProperty("message").GetString());
    }

    [Theory]
    [InlineData("\"messages\": [{\"role\": 5, \"content\": \"hi\"}]", "Invalid type for 'messages[0].role': expected a string.")]
    [InlineData("\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": \"hot\"", "Invalid type for 'temperature': expected a number.")]
    [InlineData("\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logprobs\": 1", "Invalid type for 'logprobs': expected a boolean.")]
    [InlineData("\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop_token_ids\": [\"a\"]", "Invalid type for 'stop_token_ids[0]': expected an integer.")]
    [InlineData("\"messages\": {\"role\": \"user\"}", "Invalid type for 'messages': expected an array.")]
    [InlineData("\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokenz\": 5", "Unrecognized request argument supplied: max_tokenz")]
    public async Task A_wrong_type_is_named_as_the_contract_has_it(string fields, string message)
    {
        var (status, body) = await server.PostRawAsync("/v1/chat/completions", Chat(fields));

        Assert.Equal(400, status);
        Assert.Equal(message, body.GetProperty("error").GetProperty("message").GetString());
    }

    [Fact]
    public async Task Bytes_that_are_not_UTF8_inside_a_string_are_a_400_naming_the_field()
    {
        byte[] json = Encoding.UTF8.GetBytes(Completion("\"prompt\": \"caf#\", \"max_tokens\": 2"));
        json[Array.IndexOf(json, (byte)'#')] = 0xE9;   // Latin-1 é: not UTF-8
        using var content = new ByteArrayContent(json);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using HttpResponseMessage response = await server.Http.PostAsync("/v1/completions", content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("prompt", error.GetProperty("param").GetString());
        Assert.Contains("not valid Unicode", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task A_plain_SDK_call_and_every_accepted_field_still_succeed()
    {
        // What the official SDKs and the Vercel ai SDK send for a plain call, plus OpenAI's fields that change nothing here.
        string[] accepted =
        [
            Chat($"{Hi}, \"max_completion_tokens\": 2"),
            Chat($"{Hi}, \"max_tokens\": 2, \"temperature\": 0.5, \"stream\": false"),
            Chat($"{Hi}, \"max_tokens\": 2, \"store\": true, \"metadata\": {{\"team\": \"a\"}}, \"user\": \"u-1\", \"safety_identifier\": \"s\", " +
                "\"service_tier\": \"auto\", \"parallel_tool_calls\": false, \"prompt_cache_key\": \"k\", \"prompt_cache_retention\": \"in_memory\", " +
                "\"prediction\": {\"type\": \"content\", \"content\": \"x\"}, \"modalities\": [\"text\"], \"verbosity\": \"medium\", " +
                "\"reasoning_effort\": \"none\", \"audio\": null, \"tool_choice\": null, \"response_format\": {\"type\": \"text\"}"),
            // Tools kept out of play, as OpenAI accepts; an empty tool_calls list on a replayed assistant turn.
            Chat($"{Hi}, \"max_tokens\": 2, \"tools\": [{{\"type\": \"function\", \"function\": {{\"name\": \"f\", \"parameters\": {{}}}}}}], \"tool_choice\": \"none\""),
            Chat("\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"hello\", \"tool_calls\": [], \"refusal\": null}, " +
                "{\"role\": \"user\", \"content\": \"again\"}], \"max_tokens\": 2"),
            // A tool conversation on a template without tools: written out as text by the default tool prompt.
            Chat("\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}, " +
                "{\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"c1\", \"type\": \"function\", \"function\": {\"name\": \"add\", \"arguments\": \"{}\"}}]}, " +
                "{\"role\": \"tool\", \"tool_call_id\": \"c1\", \"content\": \"4\"}], \"max_tokens\": 2"),
            // vLLM's extensions.
            Chat($"{Hi}, \"max_tokens\": 3, \"top_k\": 5, \"min_tokens\": 1, \"ignore_eos\": true, \"stop_token_ids\": [50256], \"add_generation_prompt\": true"),
            Completion("\"prompt\": \"hi\", \"max_tokens\": 2, \"top_k\": 5, \"min_tokens\": 1, \"ignore_eos\": true, \"stop_token_ids\": [50256], \"user\": \"u\", " +
                "\"best_of\": 1, \"echo\": false, \"suffix\": null, \"stream\": true, \"stream_options\": {\"include_usage\": true, \"include_obfuscation\": false}"),
        ];
        foreach (string json in accepted)
        {
            string path = json.Contains("\"prompt\"", StringComparison.Ordinal) ? "/v1/completions" : "/v1/chat/completions";
            using var content = new StringContent(json, Encoding.UTF8, "application/json");
            using HttpResponseMessage response = await server.Http.PostAsync(path, content);
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{json}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    public static TheoryData<string?> WrongContentTypes() => new()
    {
        "text/plain; charset=utf-8",                 // fetch() with a string body
        "application/x-www-form-urlencoded",         // curl -d without -H
        null,
    };

    [Theory]
    [MemberData(nameof(WrongContentTypes))]
    public async Task A_body_not_declared_as_JSON_gets_415_in_OpenAIs_shape(string? contentType)
    {
        using var content = new ByteArrayContent(Encoding.UTF8.GetBytes(Completion("\"prompt\": \"hi\", \"max_tokens\": 2")));
        content.Headers.ContentType = contentType is null ? null : MediaTypeHeaderValue.Parse(contentType);

        using HttpResponseMessage response = await server.Http.PostAsync("/v1/completions", content);

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        JsonElement error = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("unsupported_media_type", error.GetProperty("code").GetString());
        Assert.StartsWith("Content-Type must be application/json", error.GetProperty("message").GetString());
    }

    [Fact]
    public async Task Headers_too_large_are_refused_by_Kestrel_itself_before_any_middleware()
    {
        // Kestrel answers a request whose headers break its limits (431) or its parser (400) while
        // parsing, before an HttpContext exists, and offers no hook for the body (aspnet/KestrelHttpServer#2947):
        // the one error without OpenAI's body. This pins that behaviour, so a Kestrel that changes it is noticed.
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/models");
        request.Headers.Add("X-Padding", new string('a', 40_000));

        using HttpResponseMessage response = await server.Http.SendAsync(request);

        Assert.Equal(HttpStatusCode.RequestHeaderFieldsTooLarge, response.StatusCode);
        Assert.Equal(0, response.Content.Headers.ContentLength);
    }

    [Theory]
    [InlineData("/v1/chat/completions", false)]
    [InlineData("/v1/chat/completions", true)]
    [InlineData("/v1/completions", false)]
    [InlineData("/v1/completions", true)]
    public async Task Streamed_chunks_carry_usage_only_when_asked_as_OpenAI_does(string path, bool includeUsage)
    {
        string json = path == "/v1/completions"
            ? Completion($"\"prompt\": \"Hello\", \"max_tokens\": 4, \"stream\": true{(includeUsage ? ", \"stream_options\": {\"include_usage\": true}" : "")}")
            : Chat($"{Hi}, \"max_tokens\": 4, \"stream\": true{(includeUsage ? ", \"stream_options\": {\"include_usage\": true}" : "")}");
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await server.Http.PostAsync(path, content);
        string[] events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        JsonElement[] chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToArray();

        Assert.Equal("data: [DONE]", events[^1]);
        if (includeUsage)
        {
            // null on every chunk but the last, which has no choices and carries the totals.
            Assert.All(chunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
            Assert.Empty(chunks[^1].GetProperty("choices").EnumerateArray());
            Assert.Equal(4, chunks[^1].GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }
        else
        {
            Assert.All(chunks, c => Assert.False(c.TryGetProperty("usage", out _), $"usage should be left out: {c}"));
        }
    }
}
