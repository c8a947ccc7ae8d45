using System.Security.Cryptography;
using System.Text;
using LlmServer.Host;
using Microsoft.Extensions.Options;

namespace LlmServer.OpenAi;

/// <summary>Which key a route needs.</summary>
public enum KeyScope
{
    /// <summary>Inference (/v1 models, completions, chat; tokenize): --api-key, or the admin key; open when no --api-key is set.</summary>
    Inference,
    /// <summary>Files, fine-tuning and admin routes: only --admin-key; closed when none is set.</summary>
    Admin,
}

/// <summary>Marks which key a route needs, so the OpenAPI document can say so (set by <see cref="ApiKeys.RequireKey"/>).</summary>
public sealed record RequiredKeyMetadata(KeyScope Scope);

/// <summary>
/// Bearer keys as OpenAI's API takes them (<c>Authorization: Bearer KEY</c>), checked per route
/// group. Refusals are OpenAI's: 401 for a missing or wrong key, 403 for a right key without the
/// scope. Keys are compared in constant time and never echoed.
/// </summary>
public static class ApiKeys
{
    /// <summary>Requires <paramref name="scope"/>'s key on every endpoint of <paramref name="builder"/>.</summary>
    public static TBuilder RequireKey<TBuilder>(this TBuilder builder, KeyScope scope) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(new RequiredKeyMetadata(scope)).AddEndpointFilter(async (invocation, next) =>
        {
            HttpContext context = invocation.HttpContext;
            ServerOptions options = context.RequestServices.GetRequiredService<IOptions<ServerOptions>>().Value;
            if (Check(context.Request.Headers.Authorization.ToString(), scope, options.ApiKey, options.AdminKey) is { } refusal)
            {
                throw refusal;
            }
            return await next(invocation);
        });

    /// <summary>Null when the Authorization header opens <paramref name="scope"/>; otherwise the refusal.</summary>
    public static ApiException? Check(string? authorization, KeyScope scope, string? apiKey, string? adminKey)
    {
        string? presented = BearerKey(authorization);
        bool isAdmin = Matches(presented, adminKey);
        if (scope == KeyScope.Inference)
        {
            return apiKey is null || isAdmin || Matches(presented, apiKey) ? null : Unauthorized(presented);
        }
        if (adminKey is null)
        {
            return new ApiException(StatusCodes.Status403Forbidden,
                "Admin endpoints are turned off: start the server with --admin-key to use files and fine-tuning.",
                code: "admin_disabled");
        }
        if (isAdmin)
        {
            return null;
        }
        return Matches(presented, apiKey)
            ? new ApiException(StatusCodes.Status403Forbidden,
                "This key is for inference only; files, fine-tuning and admin endpoints need the admin key.",
                code: "insufficient_permissions")
            : Unauthorized(presented);
    }

    private static ApiException Unauthorized(string? presented) =>
        new(StatusCodes.Status401Unauthorized,
            presented is null
                ? "You didn't provide an API key. Send it in an Authorization header using Bearer auth (Authorization: Bearer YOUR_KEY)."
                : "Incorrect API key provided.",
            code: presented is null ? null : "invalid_api_key")
        {
            ResponseHeaders = [new("WWW-Authenticate", "Bearer")],
        };

    private static string? BearerKey(string? authorization)
    {
        const string scheme = "Bearer ";
        if (authorization is null || !authorization.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        string key = authorization[scheme.Length..].Trim();
        return key.Length == 0 ? null : key;
    }

    private static bool Matches(string? presented, string? expected) =>
        presented is not null && expected is not null
        && CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(presented), Encoding.UTF8.GetBytes(expected));
}
