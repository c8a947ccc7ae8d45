using LlmServer.Host;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing.Template;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace LlmServer.OpenAi;

/// <summary>
/// Every failure reaches the client in OpenAI's error shape, and none takes the server down:
/// refusals (<see cref="ApiException"/>) keep their status, malformed HTTP is a 400, anything
/// else is a logged 500. Unknown routes get a 404 in the same shape, a body over the size limit a 413.
/// </summary>
public sealed class OpenAiErrorMiddleware(RequestDelegate next, ILogger<OpenAiErrorMiddleware> logger, IOptions<ServerOptions> options)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
            if (!context.Response.HasStarted && context.Response.StatusCode >= 400 && context.Response.ContentLength is null)
            {
                // Routing and the framework answer some requests with a bare status; give those OpenAI's body too.
                await WriteAsync(context, BareStatus(context));
            }
        }
        catch (ApiException e)
        {
            await WriteAsync(context, e);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Kestrel's own limit, on a route that reads its body without RequestBodyBuffer: refused at
            // once for a Content-Length over it, at the limit for a chunked body; Kestrel then closes the
            // connection after this answer (Connection: close) instead of reading the rest of the body.
            await WriteAsync(context, RequestTooLarge(context));
        }
        catch (BadHttpRequestException e)
        {
            await WriteAsync(context, new ApiException(e.StatusCode, e.Message));
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client left; there is nobody to answer.
        }
        catch (Exception e)
        {
            logger.LogError(e, "Unhandled error on {Method} {Path}", context.Request.Method, context.Request.Path);
            await WriteAsync(context, new ApiException(StatusCodes.Status500InternalServerError, "The server had an error while processing your request.", "server_error"));
        }
    }

    private static ApiException BareStatus(HttpContext context)
    {
        HttpRequest request = context.Request;
        return context.Response.StatusCode switch
        {
            StatusCodes.Status404NotFound => new ApiException(StatusCodes.Status404NotFound, $"Unknown route {request.Method} {request.Path}.", code: "not_found"),
            StatusCodes.Status405MethodNotAllowed => new ApiException(StatusCodes.Status405MethodNotAllowed,
                $"{request.Method} is not allowed on {request.Path}.", code: "method_not_allowed"),
            StatusCodes.Status415UnsupportedMediaType => ApiException.UnsupportedMediaType(request.ContentType,
                string.Join(" or ", AcceptedContentTypes(context)) is { Length: > 0 } accepted ? accepted : "application/json"),
            int status => new ApiException(status, $"{status} {ReasonPhrases.GetReasonPhrase(status)}.",
                type: status >= 500 ? "server_error" : "invalid_request_error"),
        };
    }

    /// <summary>
    /// What the route takes, for routing's bare 415: it answers from a stand-in endpoint that does not
    /// say, so look up the endpoints that match the request's method and path.
    /// </summary>
    private static IEnumerable<string> AcceptedContentTypes(HttpContext context)
    {
        var endpoints = context.RequestServices.GetService<EndpointDataSource>()?.Endpoints ?? [];
        return endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IHttpMethodMetadata>()?.HttpMethods.Contains(context.Request.Method, StringComparer.OrdinalIgnoreCase) ?? true)
            .Where(e => new TemplateMatcher(new RouteTemplate(e.RoutePattern), []).TryMatch(context.Request.Path, []))
            .SelectMany(e => e.Metadata.GetMetadata<IAcceptsMetadata>()?.ContentTypes ?? [])
            .Distinct(StringComparer.OrdinalIgnoreCase);
    }

    private ApiException RequestTooLarge(HttpContext context)
    {
        long? limit = context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize;
        // /v1/files raises the limit for its uploads; only the server-wide limit is --max-request-body's.
        return ApiException.RequestTooLarge(limit, serverWideLimit: limit == options.Value.MaxRequestBodyBytes);
    }

    private static async Task WriteAsync(HttpContext context, ApiException error)
    {
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.Clear();
        context.Response.StatusCode = error.StatusCode;
        if (error.RetryAfterSeconds is int seconds)
        {
            context.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
        foreach ((string name, string value) in error.ResponseHeaders)
        {
            context.Response.Headers[name] = value;
        }
        await context.Response.WriteAsJsonAsync(error.ToResponse(), OpenAiJson.Options);
    }
}
