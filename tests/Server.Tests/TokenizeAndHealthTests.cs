using System.Net;
using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

[Collection(ServerCollection.Name)]
public class TokenizeAndHealthTests(ServerFixture server)
{
    [Fact]
    public async Task Tokenize_and_detokenize_round_trip_in_vllm_shapes()
    {
        var (status, body) = await server.PostAsync("/tokenize", new { model = ServerFixture.ModelName, prompt = "Hello, world!" });
        Assert.Equal(200, status);
        Assert.Equal([15496, 11, 995, 0], body.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32()));
        Assert.Equal(4, body.GetProperty("count").GetInt32());
        Assert.Equal(128, body.GetProperty("max_model_len").GetInt32());

        var (detokenizeStatus, detokenized) = await server.PostAsync("/detokenize", new { model = ServerFixture.ModelName, tokens = new[] { 15496, 11, 995, 0 } });
        Assert.Equal(200, detokenizeStatus);
        Assert.Equal("Hello, world!", detokenized.GetProperty("prompt").GetString());
    }

    [Fact]
    public async Task Tokenize_takes_vllms_add_special_tokens_and_refuses_a_field_it_does_not_know()
    {
        var (plain, plainBody) = await server.PostAsync("/tokenize", new { model = ServerFixture.ModelName, prompt = "Hello" });
        var (flagged, flaggedBody) = await server.PostAsync("/tokenize", new { model = ServerFixture.ModelName, prompt = "Hello", add_special_tokens = false });
        var (unknown, unknownBody) = await server.PostAsync("/tokenize", new { model = ServerFixture.ModelName, prompt = "Hello", return_tokenz = true });

        Assert.Equal(200, plain);
        Assert.Equal(200, flagged);
        Assert.Equal(plainBody.GetProperty("tokens").ToString(), flaggedBody.GetProperty("tokens").ToString());
        Assert.Equal(400, unknown);
        Assert.Equal("return_tokenz", unknownBody.GetProperty("error").GetProperty("param").GetString());
    }

    [Fact]
    public async Task Health_is_200_once_loaded_and_models_lists_the_served_name()
    {
        using HttpResponseMessage health = await server.Http.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        JsonElement models = JsonDocument.Parse(await server.Http.GetStringAsync("/v1/models")).RootElement;
        Assert.Equal("list", models.GetProperty("object").GetString());
        JsonElement card = models.GetProperty("data")[0];
        Assert.Equal(ServerFixture.ModelName, card.GetProperty("id").GetString());
        Assert.Equal("model", card.GetProperty("object").GetString());
        Assert.True(card.GetProperty("created").GetInt64() > 0);
    }
}

/// <summary>Health before the model is loaded, with an engine that never finishes loading.</summary>
public class HealthBeforeLoadTests
{
    [Fact]
    public async Task Health_is_503_and_inference_refuses_politely_while_loading()
    {
        await using RunningServer server = await RunningServer.StartAsync(
            ["--model", TestFixtures.ModelDirectory(ServerFixture.ModelName)],
            services => services.AddSingleton<IEngineClient>(new NeverReadyEngine()), waitForModel: false);
        HttpClient http = server.Http;

        Assert.Equal(HttpStatusCode.ServiceUnavailable, (await http.GetAsync("/health")).StatusCode);
        using HttpResponseMessage completion = await http.PostAsync("/v1/completions",
            new StringContent("{\"prompt\":\"hi\"}", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, completion.StatusCode);
        Assert.Equal("model_loading", JsonDocument.Parse(await completion.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString());
    }
}
