using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace LlmServer.Host;

/// <summary>
/// The options every feature reads, bound once from configuration (appsettings.json, LLMSERVER_
/// environment variables, flags) and checked at start, and what Kestrel takes from them. Whoever
/// needs a setting asks for <see cref="IOptions{ServerOptions}"/>; nothing reads the section again.
/// </summary>
public static class ServerOptionsSetup
{
    public static IServiceCollection AddServerOptions(this IServiceCollection services)
    {
        services.AddOptions<ServerOptions>()
            .BindConfiguration(ServerOptions.Section)
            // No --model (nor configured one): serve the bundled demo model.
            .PostConfigure(o => o.Model ??= BundledDemoModel.Find())
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<ServerOptions>, ServerOptionsValidator>();
        services.AddOptions<KestrelServerOptions>().Configure<IOptions<ServerOptions>>((kestrel, server) =>
        {
            kestrel.AddServerHeader = false;
            // Every endpoint reads its body under this limit (413, see OpenAiErrorMiddleware); /v1/files
            // raises it for its own request to --max-upload-size. Validation refuses a bad value at start.
            kestrel.Limits.MaxRequestBodySize = Math.Max(0, server.Value.MaxRequestBodyBytes);
        });
        return services;
    }

    /// <summary>
    /// The one address the server listens on, http://{host}:{port}, bound as UseUrls binds it (an
    /// IP address on itself, localhost on both loopbacks, any other name on every interface); it
    /// leaves ASP.NET Core's own URLS and HTTP_PORTS settings unused.
    /// </summary>
    public static WebApplication UseServerAddress(this WebApplication app)
    {
        ServerOptions options = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
        string host = options.Host.Contains(':') ? $"[{options.Host}]" : options.Host;
        app.Urls.Add($"http://{host}:{options.Port}");
        return app;
    }
}
