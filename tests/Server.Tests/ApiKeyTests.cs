using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using LlmServer.Inference.Tests;
using LlmServer.OpenAi;
using OpenAI;
using OpenAI.Chat;

namespace LlmServer.Tests;

/// <summary>Which Bearer key opens which routes, decided without a server.</summary>
public class ApiKeyRulesTests
{
    private const string Inference = "sk-inference", Admin = "sk-admin";

    [Theory]
    [InlineData(null, null, null)]                     // no keys configured: inference is open
    [InlineData(null, null, "Bearer anything")]
    [InlineData(Inference, null, "Bearer sk-inference")]
    [InlineData(Inference, Admin, "Bearer sk-admin")]  // the admin key opens inference too
    [InlineData(Inference, Admin, "bearer  sk-inference ")]
    [InlineData(null, Admin, null)]                    // an admin key alone leaves inference open
    public void Inference_routes_open(string? apiKey, string? adminKey, string? authorization) =>
        Assert.Null(ApiKeys.Check(authorization, KeyScope.Inference, apiKey, adminKey));

    [Theory]
    [InlineData(null, null, "You didn't provide an API key")]
    [InlineData("Bearer ", null, "You didn't provide an API key")]
    [InlineData("Basic c2staW5mZXJlbmNl", null, "You didn't provide an API key")]
    [InlineData("Bearer sk-wrong", "invalid_api_key", "Incorrect API key provided.")]
    [InlineData("Bearer sk-inferenc", "invalid_api_key", "Incorrect API key provided.")]
    public void Inference_routes_refuse_a_missing_or_wrong_key_with_401(string? authorization, string? code, string message)
    {
        var refusal = ApiKeys.Check(authorization, KeyScope.Inference, Inference, Admin);

        Assert.NotNull(refusal);
        Assert.Equal(401, refusal.StatusCode);
        Assert.Equal(code, refusal.Code);
        Assert.StartsWith(message, refusal.Message);
        Assert.DoesNotContain("sk-", refusal.Message);
        Assert.Contains(refusal.ResponseHeaders, h => h.Key == "WWW-Authenticate" && h.Value == "Bearer");
    }

    [Fact]
    public void Admin_routes_open_only_to_the_admin_key()
    {
        Assert.Null(ApiKeys.Check("Bearer sk-admin", KeyScope.Admin, Inference, Admin));
        Assert.Null(ApiKeys.Check("Bearer sk-admin", KeyScope.Admin, null, Admin));

        Assert.Equal(403, ApiKeys.Check("Bearer sk-inference", KeyScope.Admin, Inference, Admin)?.StatusCode);
        Assert.Equal("insufficient_permissions", ApiKeys.Check("Bearer sk-inference", KeyScope.Admin, Inference, Admin)?.Code);
        Assert.Equal(401, ApiKeys.Check(null, KeyScope.Admin, Inference, Admin)?.StatusCode);
        Assert.Equal(401, ApiKeys.Check("Bearer sk-wrong", KeyScope.Admin, Inference, Admin)?.StatusCode);
    }

    [Fact]
    public void Admin_routes_are_off_without_an_admin_key_whatever_is_sent()
    {
        foreach (string? authorization in new[] { null, "Bearer sk-inference", "Bearer anything" })
        {
            var refusal = ApiKeys.Check(authorization, KeyScope.Admin, Inference, adminKey: null);
            Assert.Equal(403, refusal?.StatusCode);
            Assert.Equal("admin_disabled", refusal?.Code);
        }
    }
}

/// <summary>A server started with --api-key and --admin-key, talked to over HTTP and through the OpenAI SDK.</summary>
public class ApiKeyServerTests
{
    private const string Model = "gpt2-random-2l-64d";

    private static Task<RunningServer> StartAsync() =>
        RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB",
            "--api-key", "sk-test-inference", "--admin-key", "sk-test-admin"]);

    [Fact]
    public async Task Inference_needs_the_key_and_answers_401_in_OpenAIs_shape_without_it()
    {
        await using RunningServer server = await StartAsync();

        using HttpResponseMessage missing = await server.Http.GetAsync("/v1/models");
        Assert.Equal(HttpStatusCode.Unauthorized, missing.StatusCode);
        Assert.Equal("Bearer", missing.Headers.WwwAuthenticate.Single().Scheme);
        JsonElement error = JsonDocument.Parse(await missing.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.StartsWith("You didn't provide an API key", error.GetProperty("message").GetString());

        using var wrong = new HttpRequestMessage(HttpMethod.Post, "/tokenize") { Content = JsonContent(new { model = Model, prompt = "Hi" }) };
        wrong.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-not-this-one");
        using HttpResponseMessage wrongResponse = await server.Http.SendAsync(wrong);
        Assert.Equal(HttpStatusCode.Unauthorized, wrongResponse.StatusCode);
        Assert.Equal("invalid_api_key", JsonDocument.Parse(await wrongResponse.Content.ReadAsStringAsync()).RootElement
            .GetProperty("error").GetProperty("code").GetString());

        using var right = new HttpRequestMessage(HttpMethod.Post, "/tokenize") { Content = JsonContent(new { model = Model, prompt = "Hi" }) };
        right.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "sk-test-inference");
        using HttpResponseMessage rightResponse = await server.Http.SendAsync(right);
        Assert.Equal(HttpStatusCode.OK, rightResponse.StatusCode);

        // Probes and scrapers carry no key.
        using HttpResponseMessage health = await server.Http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        using HttpResponseMessage metrics = await server.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, metrics.StatusCode);
    }

    [Fact]
    public async Task The_OpenAI_SDK_works_with_the_key_and_reports_401_with_another()
    {
        await using RunningServer server = await StartAsync();
        var endpoint = new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") };

        ChatClient chat = new OpenAIClient(new ApiKeyCredential("sk-test-inference"), endpoint).GetChatClient(Model);
        ChatCompletion completion = await chat.CompleteChatAsync([new UserChatMessage("Hello")], new ChatCompletionOptions { MaxOutputTokenCount = 3 });
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);

        ChatClient wrongKey = new OpenAIClient(new ApiKeyCredential("sk-wrong"), endpoint).GetChatClient(Model);
        var refused = await Assert.ThrowsAsync<ClientResultException>(() => wrongKey.CompleteChatAsync([new UserChatMessage("Hello")]));
        Assert.Equal(401, refused.Status);
    }

    private static StringContent JsonContent(object body) =>
        new(JsonSerializer.Serialize(body), System.Text.Encoding.UTF8, "application/json");
}
