using System.Text.Json;

namespace LlmServer.Tests;

/// <summary>Bad requests get a 4xx in OpenAI's error shape, and the server keeps serving.</summary>
[Collection(ServerCollection.Name)]
public class ErrorHandlingTests(ServerFixture server)
{
    public static TheoryData<string, string, int, string?> BadRequests() => new()
    {
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [", 400, null },
        { "/v1/chat/completions", "[1, 2, 3]", 400, null },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": \"many\"}", 400, "max_tokens" },
        { "/v1/chat/completions", "{\"model\": \"nope\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}", 404, "model" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": []}", 400, "messages" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", 400, "messages[0].role" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 5}", 400, "temperature" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_p\": 0}", 400, "top_p" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 0}", 400, "n" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 0}", 400, "max_tokens" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"max_tokens\": 100000}", 400, "max_tokens" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"stop\": 7}", 400, "stop" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"top_logprobs\": 3}", 400, "top_logprobs" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"logit_bias\": {\"99999999\": 5}}", 400, "logit_bias" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"image_url\", \"image_url\": {\"url\": \"x\"}}]}]}", 400, "messages[0].content" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"response_format\": {\"type\": 1}}", 400, "response_format.type" },
        { "/v1/chat/completions", "{\"model\": \"gpt2-random-2l-64d\", \"messages\": [{\"role\": \"user\", \"content\": [{\"type\": 1}]}]}", 400, "messages[0].content" },
        { "/v1/completions", "{\"model\": \"gpt2-random-2l-64d\"}", 400, "prompt" },
        { "/v1/completions", "{\"model\": \"gpt2-random-2l-64d\", \"prompt\": [1, -5]}", 400, "prompt" },
        { "/v1/completions", "{\"model\": \"gpt2-random-2l-64d\", \"prompt\": \"hi\", \"logprobs\": 50}", 400, "logprobs" },
        { "/v1/completions", "{\"model\": \"gpt2-random-2l-64d\", \"prompt\": \"hi\", \"presence_penalty\": -3}", 400, "presence_penalty" },
        { "/detokenize", "{\"model\": \"gpt2-random-2l-64d\", \"tokens\": [1, 99999999]}", 400, "tokens" },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task Bad_requests_get_an_openai_error_and_the_server_keeps_serving(string path, string json, int expectedStatus, string? expectedParam)
    {
        var (status, body) = await server.PostRawAsync(path, json);

        Assert.Equal(expectedStatus, status);
        JsonElement error = body.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.True(error.TryGetProperty("code", out _));
        if (expectedParam is not null)
        {
            Assert.Equal(expectedParam, error.GetProperty("param").GetString());
        }
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task A_prompt_longer_than_the_context_is_refused_not_truncated()
    {
        string longPrompt = string.Concat(Enumerable.Repeat(" hello", 200));   // 200 tokens > 128 positions
        var (status, body) = await server.PostAsync("/v1/completions", new { model = ServerFixture.ModelName, prompt = longPrompt });
        Assert.Equal(400, status);
        Assert.Equal("context_length_exceeded", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("128", body.GetProperty("error").GetProperty("message").GetString());
        await AssertStillServingAsync();
    }

    [Fact]
    public async Task Unknown_routes_answer_in_the_same_shape()
    {
        var (status, body) = await server.PostAsync("/v1/engines/davinci/completions", new { });
        Assert.Equal(404, status);
        Assert.True(body.GetProperty("error").TryGetProperty("message", out _));
    }

    private async Task AssertStillServingAsync()
    {
        var (status, body) = await server.PostAsync("/v1/completions", new { model = ServerFixture.ModelName, prompt = "ok", max_tokens = 2 });
        Assert.Equal(200, status);
        Assert.Equal(2, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
