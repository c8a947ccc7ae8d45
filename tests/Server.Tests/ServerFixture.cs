using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>The real server, Kestrel on a loopback port, serving a fixture model: what a client would talk to.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string ModelName = "gpt2-random-2l-64d";

    private RunningServer _server = null!;

    public Uri BaseAddress => _server.BaseAddress;
    public HttpClient Http => _server.Http;
    public IEngineClient Engine => _server.Engine;

    public async Task InitializeAsync() =>
        _server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(ModelName), "--kv-cache-memory", "64MiB"]);

    public async Task DisposeAsync() => await _server.DisposeAsync();

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
