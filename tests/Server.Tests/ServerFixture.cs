using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Hosting;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>The real server, Kestrel on a loopback port, serving a fixture model: what a client would talk to.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ModelName = "gpt2-random-2l-64d";

    private WebApplication _app = null!;

    public Uri BaseAddress { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public IEngineClient Engine => _app.Services.GetRequiredService<IEngineClient>();

    public async Task InitializeAsync()
    {
        _app = ServerApplication.Build(["--model", TestFixtures.ModelDirectory(ModelName), "--port", "0", "--kv-cache-memory", "64MiB"]);
        await _app.StartAsync();
        BaseAddress = new Uri(_app.Urls.First());
        Http = new HttpClient { BaseAddress = BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        await Engine.Ready;
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public async Task<(int Status, JsonElement Body)> PostAsync(string path, object body)
    {
        using HttpResponseMessage response = await Http.PostAsJsonAsync(path, body);
        return ((int)response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }

    public async Task<(int Status, JsonElement Body)> PostRawAsync(string path, string json)
    {
        using var content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        using HttpResponseMessage response = await Http.PostAsync(path, content);
        return ((int)response.StatusCode, await response.Content.ReadFromJsonAsync<JsonElement>());
    }
}

[CollectionDefinition(Name)]
public sealed class ServerCollection : ICollectionFixture<ServerFixture>
{
    public const string Name = "server";
}
