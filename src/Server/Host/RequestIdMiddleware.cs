using System.Diagnostics;
using Serilog.Context;

namespace LlmServer.Host;

/// <summary>
/// Gives every request an id: the client's <c>x-request-id</c> when it is a sane token, else a new
/// one. It is returned in the <c>x-request-id</c> response header, set as the request's
/// TraceIdentifier, pushed into the log context of everything logged for the request, and tagged
/// (and put in the baggage) of the request's span, so logs and traces of one request correlate.
/// </summary>
public sealed class RequestIdMiddleware(RequestDelegate next)
{
    public const string HeaderName = "x-request-id";
    public const string TagName = "http.request.id";
    private const int MaxLength = 128;

    public async Task InvokeAsync(HttpContext context)
    {
        string id = IsSane(context.Request.Headers[HeaderName].ToString()) ? context.Request.Headers[HeaderName].ToString() : NewId();
        context.TraceIdentifier = id;
        // Set when the response starts: the error middleware clears headers when it rewrites a response.
        context.Response.OnStarting(() =>
        {
            context.Response.Headers[HeaderName] = id;
            return Task.CompletedTask;
        });
        if (Activity.Current is { } activity)
        {
            activity.SetTag(TagName, id);
            activity.SetBaggage(TagName, id);
        }
        using (LogContext.PushProperty("RequestId", id))
        {
            await next(context);
        }
    }

    /// <summary>Letters, digits and <c>-_.:</c>, at most 128: anything else could forge log lines or headers.</summary>
    public static bool IsSane(string? value) =>
        value is { Length: > 0 and <= MaxLength } && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');

    private static string NewId() => Guid.NewGuid().ToString("N");
}
