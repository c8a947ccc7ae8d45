using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using LlmServer.Host;
using Microsoft.Extensions.Options;

namespace LlmServer.OpenAi;

/// <summary>The wire format: snake_case names, nulls left out unless a contract insists on them.</summary>
public static class OpenAiJson
{
    public static readonly JsonSerializerOptions Options = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    /// <summary>Every route's TypedResults are written in the wire format too, not in ASP.NET Core's default one.</summary>
    public static IServiceCollection AddOpenAiJson(this IServiceCollection services) =>
        services.ConfigureHttpJsonOptions(json => Configure(json.SerializerOptions));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.PropertyNameCaseInsensitive = false;
        options.NumberHandling = JsonNumberHandling.Strict;
        // Text goes out as UTF-8 like OpenAI's, not as \uXXXX escapes; this JSON is never inlined into HTML.
        options.Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        // Every request string is checked as it is read, so text that is not Unicode is a 400 naming the field wherever it sits.
        options.Converters.Add(new WellFormedStringConverter());
        options.Converters.Add(new WellFormedJsonElementConverter());
        return options;
    }

    /// <summary>
    /// Reads a request body, turning malformed JSON and mistyped fields into a 400 that names the field.
    /// </summary>
    public static async Task<T> ReadBodyAsync<T>(HttpRequest request, CancellationToken cancellationToken) where T : class
    {
        RequireJsonContentType(request);
        // Read whole into small pooled chunks, then parsed in place: see RequestBodyBuffer for why not DeserializeAsync.
        long limit = request.HttpContext.RequestServices.GetRequiredService<IOptions<ServerOptions>>().Value.MaxRequestBodyBytes;
        using RequestBodyBuffer buffer = await RequestBodyBuffer.ReadAsync(request, limit, cancellationToken);
        LargeBodyMemoryRelease.AfterResponse(request.HttpContext.Response, buffer.Length);
        try
        {
            T? body = Deserialize<T>(buffer.GetSequence());
            return body ?? throw new ApiException(StatusCodes.Status400BadRequest, "The request body must be a JSON object.");
        }
        catch (JsonException e)
        {
            throw JsonRequestErrors.From(e, typeof(T), Options);
        }
    }

    /// <summary>One JSON value and nothing after it, as DeserializeAsync on the stream required.</summary>
    private static T? Deserialize<T>(System.Buffers.ReadOnlySequence<byte> json)
    {
        var reader = new Utf8JsonReader(json, new JsonReaderOptions
        {
            AllowTrailingCommas = Options.AllowTrailingCommas,
            CommentHandling = Options.ReadCommentHandling,
            MaxDepth = Options.MaxDepth,
        });
        T? value = JsonSerializer.Deserialize<T>(ref reader, Options);
        // Throws JsonException on anything but whitespace after the value.
        while (reader.Read())
        {
        }
        return value;
    }


    /// <summary>
    /// A JSON body must say so. A missing Content-Type is refused like a wrong one, as routing already
    /// refuses a wrong one for the endpoints that declare what they accept: one rule, not two.
    /// </summary>
    public static void RequireJsonContentType(HttpRequest request)
    {
        if (request.ContentType is not { } contentType || !contentType.Contains("json", StringComparison.OrdinalIgnoreCase))
        {
            throw ApiException.UnsupportedMediaType(request.ContentType, "application/json");
        }
    }
}
