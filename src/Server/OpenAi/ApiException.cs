
namespace LlmServer.OpenAi;

/// <summary>A request the server refuses, carrying what OpenAI's error body needs.</summary>
public sealed class ApiException(int statusCode, string message, string type = "invalid_request_error", string? param = null, string? code = null)
    : Exception(message)
{
    public int StatusCode { get; } = statusCode;
    public string Type { get; } = type;
    public string? Param { get; } = param;
    public string? Code { get; } = code;

    /// <summary>Seconds a client should wait before retrying (the Retry-After header), when it applies.</summary>
    public int? RetryAfterSeconds { get; init; }

    /// <summary>Other headers the refusal carries (WWW-Authenticate on a 401).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ResponseHeaders { get; init; } = [];

    public ErrorResponse ToResponse() => new(new ErrorDetail(Message, Type, Param, Code));

    public static ApiException InvalidParameter(string param, string message) =>
        new(StatusCodes.Status400BadRequest, message, param: param, code: "invalid_value");

    /// <param name="contentType">What the request sent, null when it sent none.</param>
    /// <param name="expected">What the route reads: application/json, or multipart/form-data for an upload.</param>
    public static ApiException UnsupportedMediaType(string? contentType, string expected)
    {
        string sent = contentType is null ? "; the request has none" : $", not '{contentType}'";
        // What curl -d sends without -H, the most common way to get here.
        string hint = contentType?.StartsWith("application/x-www-form-urlencoded", StringComparison.OrdinalIgnoreCase) == true && expected == "application/json"
            ? " (curl -d sends a form unless given -H 'Content-Type: application/json'.)"
            : "";
        return new(StatusCodes.Status415UnsupportedMediaType, $"Content-Type must be {expected}{sent}.{hint}", code: "unsupported_media_type");
    }

    public static ApiException ModelNotFound(string? model) =>
        new(StatusCodes.Status404NotFound, $"The model `{model}` does not exist.", param: "model", code: "model_not_found");

    public static ApiException Overloaded(int retryAfterSeconds) =>
        new(StatusCodes.Status429TooManyRequests,
            "The server is at capacity: every running and queued slot is taken. Retry after the time in the Retry-After header.",
            type: "rate_limit_error", code: "rate_limit_exceeded")
        { RetryAfterSeconds = retryAfterSeconds };

    /// <param name="limit">The limit in bytes; when it is the server-wide one, the refusal names its flag.</param>
    public static ApiException RequestTooLarge(long? limit, bool serverWideLimit = true) =>
        new(StatusCodes.Status413PayloadTooLarge,
            $"The request body is larger than this server accepts: at most {limit} bytes{(serverWideLimit ? " (--max-request-body)" : "")}.",
            code: "request_too_large");

    public static ApiException NotReady() =>
        new(StatusCodes.Status503ServiceUnavailable, "The model is still loading; retry shortly.", type: "service_unavailable", code: "model_loading");
}
