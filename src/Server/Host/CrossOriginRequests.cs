using Microsoft.AspNetCore.Cors.Infrastructure;
using Microsoft.Extensions.Options;

namespace LlmServer.Host;

/// <summary>
/// CORS, so that a web app served from another origin can call the API from the browser, as
/// vLLM's <c>--allowed-origins</c>, <c>--allowed-methods</c> and <c>--allowed-headers</c> allow.
/// Off unless <c>--allowed-origins</c> is set: then no response carries a CORS header, and
/// browsers keep pages of other origins from reading any answer.
/// </summary>
public static class CrossOriginRequests
{
    public const string Any = "*";

    /// <summary>
    /// Response headers a browser app may read besides the safelisted ones: the request id for
    /// support, and Retry-After, which the OpenAI SDKs wait by after a 429.
    /// </summary>
    public static readonly string[] ExposedHeaders = [RequestIdMiddleware.HeaderName, "Retry-After"];

    /// <summary>How long a browser may reuse a preflight's answer: Starlette's default, which vLLM serves.</summary>
    public static readonly TimeSpan PreflightMaxAge = TimeSpan.FromMinutes(10);

    public static bool IsEnabled(ServerOptions options) => List(options.AllowedOrigins).Count > 0;

    /// <summary>A comma-separated setting as its entries, blanks dropped.</summary>
    public static IReadOnlyList<string> List(string? setting) =>
        setting is null ? [] : setting.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    public static IServiceCollection AddCrossOriginRequests(this IServiceCollection services)
    {
        services.AddCors();
        services.AddOptions<CorsOptions>().Configure<IOptions<ServerOptions>>((cors, server) =>
        {
            if (IsEnabled(server.Value))
            {
                cors.AddDefaultPolicy(policy => ConfigurePolicy(policy, server.Value));
            }
        });
        return services;
    }

    private static void ConfigurePolicy(CorsPolicyBuilder policy, ServerOptions options)
    {
        IReadOnlyList<string> origins = List(options.AllowedOrigins), methods = List(options.AllowedMethods), headers = List(options.AllowedHeaders);
        _ = origins.Contains(Any) ? policy.AllowAnyOrigin() : policy.WithOrigins([.. origins]);
        // Any method or header: the preflight answer names the ones the browser asked for,
        // which covers Authorization (a literal "*" would not) and the headers the OpenAI
        // JavaScript SDK adds (x-stainless-*, OpenAI-Organization, OpenAI-Project).
        _ = methods.Contains(Any) ? policy.AllowAnyMethod() : policy.WithMethods([.. methods]);
        _ = headers.Contains(Any) ? policy.AllowAnyHeader() : policy.WithHeaders([.. headers]);
        // No credentials mode: keys travel in the Authorization header, not in cookies.
        policy.WithExposedHeaders(ExposedHeaders).SetPreflightMaxAge(PreflightMaxAge);
    }

    /// <summary>
    /// Before the error middleware and every endpoint: a preflight carries no Authorization header
    /// and is answered here, never refused for a missing key, and the headers are set when a
    /// response starts, so refusals (401, 400, 429) carry them too and a browser app can read
    /// OpenAI's error body.
    /// </summary>
    public static WebApplication UseCrossOriginRequests(this WebApplication app)
    {
        if (IsEnabled(app.Services.GetRequiredService<IOptions<ServerOptions>>().Value))
        {
            app.UseCors();
        }
        return app;
    }

    /// <summary>What is wrong with the settings, one line per problem, each starting with its flag.</summary>
    public static IEnumerable<string> Problems(ServerOptions options)
    {
        IReadOnlyList<string> origins = List(options.AllowedOrigins);
        if (origins.Contains(Any) && origins.Count > 1)
        {
            yield return $"--allowed-origins: {Any} allows every origin and stands alone (got '{options.AllowedOrigins}')";
        }
        foreach (string origin in origins.Where(o => o != Any && !IsOrigin(o)))
        {
            yield return $"--allowed-origins: '{origin}' is not an origin: scheme://host[:port] as a browser sends it, such as http://localhost:3000 (no path, no trailing slash)";
        }
        foreach ((string flag, string? setting) in new[] { ("--allowed-methods", options.AllowedMethods), ("--allowed-headers", options.AllowedHeaders) })
        {
            IReadOnlyList<string> entries = List(setting);
            if (entries.Count == 0 || (entries.Contains(Any) && entries.Count > 1) || entries.Any(e => e != Any && !IsToken(e)))
            {
                yield return $"{flag}: must be {Any} or a comma-separated list of names (got '{setting}')";
            }
        }
    }

    /// <summary>An origin as the browser's Origin header carries it: http(s), a host, maybe a port, nothing more.</summary>
    private static bool IsOrigin(string value) =>
        Uri.TryCreate(value, UriKind.Absolute, out Uri? uri)
        && uri.Scheme is "http" or "https"
        && uri.UserInfo.Length == 0
        && value.TrimEnd('/').Length == value.Length
        && uri.GetLeftPart(UriPartial.Authority).Equals(value, StringComparison.OrdinalIgnoreCase);

    /// <summary>An HTTP token (RFC 9110): a method or header name.</summary>
    private static bool IsToken(string value) =>
        value.All(c => char.IsAsciiLetterOrDigit(c) || "!#$%&'*+-.^_`|~".Contains(c));
}
