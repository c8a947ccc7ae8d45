using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>/admin/models/load, /admin/models/unload and /admin/aliases over HTTP, and what /v1 then serves.</summary>
public sealed class AdminModelsApiTests : IAsyncLifetime, IDisposable
{
    private const string AdminKey = "sk-test-admin", InferenceKey = "sk-test-inference", Base = "gpt2-random-2l-64d";
    private readonly string _otherDirectory = Path.Combine(Path.GetTempPath(), "admin-models-" + Guid.NewGuid().ToString("N"));
    private RunningServer _server = null!;

    public async Task InitializeAsync()
    {
        string fixture = TestFixtures.ModelDirectory(Base);
        RandomCheckpoint.Create(Gpt2Config.Load(Path.Combine(fixture, "config.json")), _otherDirectory, fixture, seed: 11);
        _server = await RunningServer.StartAsync(["--model", fixture, "--kv-cache-memory", "64MiB",
            "--api-key", InferenceKey, "--admin-key", AdminKey, "--data-dir", Path.Combine(_otherDirectory, "data")]);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    public void Dispose() => Directory.Delete(_otherDirectory, recursive: true);

    private async Task<(HttpStatusCode Status, JsonElement Body)> SendAsync(HttpMethod method, string path, object? body = null, string key = AdminKey)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null)
        {
            request.Content = JsonContent.Create(body);
        }
        using HttpResponseMessage response = await _server.Http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        return (response.StatusCode, text.Length == 0 ? default : JsonDocument.Parse(text).RootElement.Clone());
    }

    private async Task<JsonElement> CompleteAsync(string? model)
    {
        (HttpStatusCode status, JsonElement body) = await SendAsync(HttpMethod.Post, "/v1/completions",
            new { model, prompt = "Hello there", max_tokens = 8, temperature = 0 }, InferenceKey);
        Assert.Equal(HttpStatusCode.OK, status);
        return body;
    }

    private static string[] Ids(JsonElement list) => list.GetProperty("data").EnumerateArray().Select(m => m.GetProperty("id").GetString()!).ToArray();

    [Fact]
    public async Task A_model_is_loaded_aliased_as_the_default_and_unloaded_while_serving()
    {
        JsonElement baseAnswer = await CompleteAsync(Base);

        (HttpStatusCode loaded, JsonElement card) = await SendAsync(HttpMethod.Post, "/admin/models/load", new { path = _otherDirectory, name = "other" });
        Assert.Equal(HttpStatusCode.OK, loaded);
        Assert.Equal("other", card.GetProperty("id").GetString());
        Assert.Equal("model", card.GetProperty("object").GetString());
        Assert.Equal([Base, "other"], Ids((await SendAsync(HttpMethod.Get, "/v1/models", key: InferenceKey)).Body));

        JsonElement otherAnswer = await CompleteAsync("other");
        Assert.Equal("other", otherAnswer.GetProperty("model").GetString());
        Assert.NotEqual(baseAnswer.GetProperty("system_fingerprint").GetString(), otherAnswer.GetProperty("system_fingerprint").GetString());
        string otherText = otherAnswer.GetProperty("choices")[0].GetProperty("text").GetString()!;
        Assert.NotEqual(baseAnswer.GetProperty("choices")[0].GetProperty("text").GetString(), otherText);

        // The default name now answers with the other weights, also for requests naming no model.
        (HttpStatusCode aliased, JsonElement alias) = await SendAsync(HttpMethod.Post, "/admin/aliases", new { alias = Base, model = "other" });
        Assert.Equal(HttpStatusCode.OK, aliased);
        Assert.Equal("other", alias.GetProperty("model").GetString());
        Assert.Equal(otherText, (await CompleteAsync(Base)).GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(otherText, (await CompleteAsync(null)).GetProperty("choices")[0].GetProperty("text").GetString());
        JsonElement aliasCard = (await SendAsync(HttpMethod.Get, $"/v1/models/{Base}", key: InferenceKey)).Body;
        Assert.Equal("other", aliasCard.GetProperty("alias_of").GetString());
        Assert.Equal([Base], (await SendAsync(HttpMethod.Get, "/admin/aliases")).Body.GetProperty("data").EnumerateArray()
            .Select(a => a.GetProperty("alias").GetString()));

        // "other" is in use by the alias: unloading it is refused and changes nothing.
        (HttpStatusCode refused, JsonElement error) = await SendAsync(HttpMethod.Post, "/admin/models/unload", new { model = "other" });
        Assert.Equal(HttpStatusCode.Conflict, refused);
        Assert.Contains(Base, error.GetProperty("error").GetProperty("message").GetString());

        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Delete, $"/admin/aliases/{Base}")).Status);
        Assert.Equal(baseAnswer.GetProperty("choices")[0].GetProperty("text").GetString(),
            (await CompleteAsync(null)).GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, "/admin/models/unload", new { model = "other" })).Status);
        Assert.Equal([Base], Ids((await SendAsync(HttpMethod.Get, "/v1/models", key: InferenceKey)).Body));
        (HttpStatusCode gone, JsonElement goneBody) = await SendAsync(HttpMethod.Post, "/v1/completions", new { model = "other", prompt = "Hi", max_tokens = 2 }, InferenceKey);
        Assert.Equal(HttpStatusCode.NotFound, gone);
        Assert.Equal("model_not_found", goneBody.GetProperty("error").GetProperty("code").GetString());
    }

    [Fact]
    public async Task Server_paths_are_shown_on_the_admin_API_and_kept_from_the_inference_key()
    {
        (HttpStatusCode loaded, JsonElement card) = await SendAsync(HttpMethod.Post, "/admin/models/load", new { path = _otherDirectory, name = "other" });
        Assert.Equal(HttpStatusCode.OK, loaded);
        Assert.Equal(Path.GetFullPath(_otherDirectory), card.GetProperty("path").GetString());
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(HttpMethod.Post, "/admin/aliases", new { alias = "latest", model = "other" })).Status);

        JsonElement served = (await SendAsync(HttpMethod.Get, "/v1/models", key: InferenceKey)).Body;
        string text = served.GetRawText();
        Assert.DoesNotContain(Path.GetFullPath(_otherDirectory), text);
        Assert.DoesNotContain(Path.GetFullPath(TestFixtures.ModelDirectory(Base)), text);
        foreach (JsonElement model in served.GetProperty("data").EnumerateArray())
        {
            Assert.False(model.TryGetProperty("path", out _));
            // vLLM's root, as a served name: the model the id resolves to.
            string expectedRoot = model.TryGetProperty("alias_of", out JsonElement target) ? target.GetString()! : model.GetProperty("id").GetString()!;
            Assert.Equal(expectedRoot, model.GetProperty("root").GetString());
        }
        Assert.DoesNotContain(_otherDirectory, (await SendAsync(HttpMethod.Get, "/v1/models/latest", key: InferenceKey)).Body.GetRawText());

        (HttpStatusCode status, JsonElement admin) = await SendAsync(HttpMethod.Get, "/admin/models");
        Assert.Equal(HttpStatusCode.OK, status);
        Dictionary<string, string> paths = admin.GetProperty("data").EnumerateArray()
            .ToDictionary(m => m.GetProperty("id").GetString()!, m => m.GetProperty("path").GetString()!);
        Assert.Equal(Path.GetFullPath(TestFixtures.ModelDirectory(Base)), paths[Base]);
        Assert.Equal(Path.GetFullPath(_otherDirectory), paths["other"]);
        Assert.Equal(Path.GetFullPath(_otherDirectory), paths["latest"]);
        Assert.Equal(HttpStatusCode.Forbidden, (await SendAsync(HttpMethod.Get, "/admin/models", key: InferenceKey)).Status);
    }

    [Fact]
    public async Task Bad_admin_requests_get_OpenAI_errors_and_change_nothing()
    {
        async Task Expect(HttpStatusCode status, string? param, HttpMethod method, string path, object? body, string key = AdminKey)
        {
            (HttpStatusCode actual, JsonElement error) = await SendAsync(method, path, body, key);
            Assert.Equal(status, actual);
            JsonElement detail = error.GetProperty("error");
            Assert.False(string.IsNullOrEmpty(detail.GetProperty("message").GetString()));
            if (param is not null)
            {
                Assert.Equal(param, detail.GetProperty("param").GetString());
            }
        }

        await Expect(HttpStatusCode.BadRequest, "path", HttpMethod.Post, "/admin/models/load", new { name = "x" });
        await Expect(HttpStatusCode.BadRequest, "name", HttpMethod.Post, "/admin/models/load", new { path = _otherDirectory });
        await Expect(HttpStatusCode.BadRequest, "path", HttpMethod.Post, "/admin/models/load", new { path = "/no/such/dir", name = "x" });
        await Expect(HttpStatusCode.BadRequest, "path", HttpMethod.Post, "/admin/models/load", new { path = TestFixtures.ModelDirectory("tiny-gpt2"), name = "x" });
        await Expect(HttpStatusCode.NotFound, "model", HttpMethod.Post, "/admin/models/unload", new { model = "missing" });
        await Expect(HttpStatusCode.Conflict, "model", HttpMethod.Post, "/admin/models/unload", new { model = Base });
        await Expect(HttpStatusCode.NotFound, "model", HttpMethod.Post, "/admin/aliases", new { alias = "a", model = "missing" });
        await Expect(HttpStatusCode.NotFound, "alias", HttpMethod.Delete, "/admin/aliases/missing", null);
        await Expect(HttpStatusCode.Forbidden, null, HttpMethod.Post, "/admin/models/load", new { path = _otherDirectory, name = "x" }, InferenceKey);
        await Expect(HttpStatusCode.Unauthorized, null, HttpMethod.Post, "/admin/aliases", new { alias = "a", model = Base }, "sk-wrong");

        Assert.Equal([Base], Ids((await SendAsync(HttpMethod.Get, "/v1/models", key: InferenceKey)).Body));
        Assert.Empty((await SendAsync(HttpMethod.Get, "/admin/aliases")).Body.GetProperty("data").EnumerateArray());
    }
}
