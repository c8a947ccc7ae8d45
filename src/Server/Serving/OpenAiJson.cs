using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.RegularExpressions;
using System.Text.Json.Serialization;
using LlmServer.Hosting;
using Microsoft.Extensions.Options;

namespace LlmServer.Serving;

/// <summary>The wire format: snake_case names, nulls left out unless a contract insists on them.</summary>
public static partial class OpenAiJson
{
    public static readonly JsonSerializerOptions Options = Configure(new JsonSerializerOptions(JsonSerializerDefaults.Web));

    public static JsonSerializerOptions Configure(JsonSerializerOptions options)
    {
        options.PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower;
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.PropertyNameCaseInsensitive = false;
        options.NumberHandling = JsonNumberHandling.Strict;
        // Text goes out as UTF-8 like OpenAI's, not as \uXXXX escapes; this JSON is never inlined into HTML.
        options.Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        // Long prompts decoded without leaving body-sized arrays in ArrayPool.Shared.
        options.Converters.Add(new PoolFreeStringConverter());
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
            string? param = e.Path is { Length: > 2 } path ? path.TrimStart('$', '.') : null;
            string message = ConversionFailure().Match(e.Message) is { Success: true } conversion && param is not null
                ? $"Invalid type for '{param}': expected {FriendlyType(conversion.Groups["type"].Value)}."
                : $"We could not parse the JSON body of your request: {FirstLine(e.Message)}";
            throw new ApiException(StatusCodes.Status400BadRequest, message, param: param, code: param is null ? "invalid_json" : "invalid_type");
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

    [GeneratedRegex(@"could not be converted to (?<type>[^.\s]+(\.[^.\s]+)*)")]
    private static partial Regex ConversionFailure();

    /// <summary>Says "a number" where System.Text.Json says "System.Nullable`1[System.Double]".</summary>
    private static string FriendlyType(string clrType) => clrType switch
    {
        _ when clrType.Contains("Double") || clrType.Contains("Single") => "a number",
        _ when clrType.Contains("Int32") || clrType.Contains("Int64") => "an integer",
        _ when clrType.Contains("Boolean") => "true or false",
        _ when clrType.Contains("Dictionary") => "an object",
        _ when clrType.Contains("List") || clrType.Contains("[]") => "a list",
        _ when clrType.EndsWith("String", StringComparison.Ordinal) => "a string",
        _ => "an object",
    };

    private static string FirstLine(string message)
    {
        int end = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (end > 0 ? message[..end] : message).Trim();
    }
}
