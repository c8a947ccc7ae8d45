using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmServer.Serving;

/// <summary>The wire format: snake_case names, nulls left out unless a contract insists on them.</summary>
public static class OpenAiJson
{
    public static readonly JsonSerializerOptions Options = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.PropertyNameCaseInsensitive = false;
        options.NumberHandling = JsonNumberHandling.Strict;
        return options;
    }

    /// <summary>
    /// Reads a request body, turning malformed JSON and mistyped fields into a 400 that names the field.
    /// </summary>
    public static async Task<T> ReadBodyAsync<T>(HttpRequest request, CancellationToken cancellationToken) where T : class
    {
        if (request.ContentType is { } contentType && !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            throw new ApiException(StatusCodes.Status415UnsupportedMediaType, $"Content-Type must be application/json, not '{contentType}'.");
        }
        try
        {
            T? body = await JsonSerializer.DeserializeAsync<T>(request.Body, Options, cancellationToken);
            return body ?? throw new ApiException(StatusCodes.Status400BadRequest, "The request body must be a JSON object.");
        }
        catch (JsonException e)
        {
            string? param = e.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : null;
            string where = param is null ? "" : $" at '{param}'";
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"We could not parse the JSON body of your request{where}: {FirstLine(e.Message)}", param: param, code: "invalid_json");
        }
    }

    private static string FirstLine(string message)
    {
        int end = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (end > 0 ? message[..end] : message).Trim();
    }
}
