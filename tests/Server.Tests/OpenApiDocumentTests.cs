using System.Text.Json;
using LlmServer.Inference.Tests;
using Microsoft.AspNetCore.Routing;

namespace LlmServer.Tests;

/// <summary>The OpenAPI document at /swagger/v1/swagger.json describes every route the server maps, as it is on the wire.</summary>
public sealed class OpenApiDocumentTests
{
    [Fact]
    public async Task Every_mapped_route_is_documented_with_a_response_schema_and_the_keys_that_open_it()
    {
        await using RunningServer server = await RunningServer.StartAsync(
            ["--model", TestFixtures.ModelDirectory(ServerFixture.ModelName), "--admin-key", "sk-admin-doc"]);
        using HttpResponseMessage response = await server.Http.GetAsync("/swagger/v1/swagger.json");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        JsonElement document = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        JsonElement paths = document.GetProperty("paths");

        var routes = server.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            // A group's "" route reads "/v1/files/"; the document writes it without the slash.
            .Select(e => (Path: "/" + e.RoutePattern.RawText!.Trim('/'),
                Methods: e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"]))
            .ToList();
        Assert.Contains(routes, r => r.Path == "/v1/chat/completions");
        Assert.Contains(routes, r => r.Path == "/metrics");
        foreach ((string path, IReadOnlyList<string> methods) in routes)
        {
            Assert.True(paths.TryGetProperty(path, out JsonElement item), $"{path} is not in the OpenAPI document");
            foreach (string method in methods)
            {
                Assert.True(item.TryGetProperty(method.ToLowerInvariant(), out JsonElement operation), $"{method} {path} is not documented");
                bool hasSchema = operation.GetProperty("responses").EnumerateObject()
                    .Any(r => r.Value.TryGetProperty("content", out JsonElement content)
                        && content.EnumerateObject().Any(c => c.Value.TryGetProperty("schema", out _)));
                Assert.True(hasSchema, $"{method} {path} documents no response schema");
                if (path.StartsWith("/v1/files", StringComparison.Ordinal) || path.StartsWith("/v1/fine_tuning", StringComparison.Ordinal) || path.StartsWith("/admin", StringComparison.Ordinal))
                {
                    Assert.Equal("admin_key", operation.GetProperty("security")[0].EnumerateObject().Single().Name);
                }
                else if (path.StartsWith("/v1", StringComparison.Ordinal) || path is "/tokenize" or "/detokenize")
                {
                    Assert.Equal("inference_key", operation.GetProperty("security")[0].EnumerateObject().Single().Name);
                }
            }
        }

        JsonElement schemes = document.GetProperty("components").GetProperty("securitySchemes");
        foreach (string scheme in new[] { "inference_key", "admin_key" })
        {
            Assert.Equal("http", schemes.GetProperty(scheme).GetProperty("type").GetString());
            Assert.Equal("bearer", schemes.GetProperty(scheme).GetProperty("scheme").GetString());
        }

        // Wire names (snake_case), the request example, and SSE for streams.
        JsonElement chat = paths.GetProperty("/v1/chat/completions").GetProperty("post");
        JsonElement requestBody = chat.GetProperty("requestBody").GetProperty("content").GetProperty("application/json");
        Assert.True(requestBody.GetProperty("example").TryGetProperty("messages", out _));
        JsonElement chatRequest = Resolve(document, requestBody.GetProperty("schema"));
        JsonElement properties = chatRequest.GetProperty("properties");
        foreach (string name in new[] { "model", "messages", "max_completion_tokens", "stream_options", "top_p" })
        {
            Assert.True(properties.TryGetProperty(name, out _), $"chat's request schema has no '{name}'");
        }
        Assert.Contains("messages", chatRequest.GetProperty("required").EnumerateArray().Select(r => r.GetString()));
        JsonElement ok = chat.GetProperty("responses").GetProperty("200").GetProperty("content");
        Assert.True(ok.TryGetProperty("application/json", out _));
        Assert.True(ok.TryGetProperty("text/event-stream", out _));
        Assert.True(Resolve(document, ok.GetProperty("application/json").GetProperty("schema")).GetProperty("properties").TryGetProperty("system_fingerprint", out _));
        Assert.True(paths.GetProperty("/v1/completions").GetProperty("post").GetProperty("requestBody")
            .GetProperty("content").GetProperty("application/json").TryGetProperty("example", out _));

        using HttpResponseMessage ui = await server.Http.GetAsync("/swagger/index.html");
        Assert.Equal(System.Net.HttpStatusCode.OK, ui.StatusCode);
    }

    private static JsonElement Resolve(JsonElement document, JsonElement schema)
    {
        string reference = schema.GetProperty("$ref").GetString()!;
        return document.GetProperty("components").GetProperty("schemas").GetProperty(reference["#/components/schemas/".Length..]);
    }
}
