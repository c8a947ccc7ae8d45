using System.Net;
using System.Text.Json;
using LlmServer.Host.Drain;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>/health/ready: what a load balancer routes by. 200 only when loaded and not draining.</summary>
public sealed class ReadinessTests
{
    private static async Task<(HttpStatusCode Status, JsonElement Body)> GetAsync(HttpClient http, string path)
    {
        using HttpResponseMessage response = await http.GetAsync(path);
        return (response.StatusCode, JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone());
    }

    [Fact]
    public async Task Ready_is_503_loading_before_the_model_is_loaded()
    {
        await using RunningServer server = await RunningServer.StartAsync(
            ["--model", TestFixtures.ModelDirectory(ServerFixture.ModelName)],
            services => services.AddSingleton<IEngineClient>(new NeverReadyEngine()), waitForModel: false);

        var (status, body) = await GetAsync(server.Http, "/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("loading", body.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Ready_is_200_once_loaded_and_503_draining_with_new_work_refused_in_openai_shape()
    {
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(ServerFixture.ModelName)]);

        var (status, body) = await GetAsync(server.Http, "/health/ready");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("ok", body.GetProperty("status").GetString());

        // What SIGTERM does first (ApplicationStopping), without stopping the test's server.
        server.Services.GetRequiredService<DrainState>().BeginDrain();

        (status, body) = await GetAsync(server.Http, "/health/ready");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("draining", body.GetProperty("status").GetString());
        // Liveness keeps its meaning: the process is alive and the model loaded.
        Assert.Equal(HttpStatusCode.OK, (await GetAsync(server.Http, "/health")).Status);

        using HttpResponseMessage refused = await server.Http.PostAsync("/v1/completions",
            new StringContent("""{"prompt":"Hello","max_tokens":2}""", System.Text.Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, refused.StatusCode);
        JsonElement error = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.Equal("service_unavailable", error.GetProperty("type").GetString());
        Assert.Equal("server_shutting_down", error.GetProperty("code").GetString());
        Assert.True(error.TryGetProperty("param", out _));
    }
}
