using LlmServer.Contracts;
using LlmServer.Serving;

namespace LlmServer.Hosting;

/// <summary>
/// Every failure reaches the client in OpenAI's error shape, and none takes the server down:
/// refusals (<see cref="ApiException"/>) keep their status, malformed HTTP is a 400, anything
/// else is a logged 500. Unknown routes get a 404 in the same shape.
/// </summary>
public sealed class OpenAiErrorMiddleware(RequestDelegate next, ILogger<OpenAiErrorMiddleware> logger)
{
    public async Task InvokeAsync(HttpContext context)
    {
        try
        {
            await next(context);
            if (context.Response.StatusCode == StatusCodes.Status404NotFound && !context.Response.HasStarted && context.Response.ContentLength is null)
            {
                await WriteAsync(context, new ApiException(StatusCodes.Status404NotFound,
                    $"Unknown route {context.Request.Method} {context.Request.Path}.", code: "not_found"));
            }
            else if (context.Response.StatusCode == StatusCodes.Status405MethodNotAllowed && !context.Response.HasStarted)
            {
                await WriteAsync(context, new ApiException(StatusCodes.Status405MethodNotAllowed,
                    $"{context.Request.Method} is not allowed on {context.Request.Path}.", code: "method_not_allowed"));
            }
        }
        catch (ApiException e)
        {
            await WriteAsync(context, e);
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
