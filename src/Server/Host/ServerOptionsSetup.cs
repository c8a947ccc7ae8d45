using System.Net;
using System.Net.Sockets;
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
        app.Urls.Add(AddressOf(options));
        // ASP.NET Core's own "Now listening on" is below the host's log level; with --port 0 this
        // is the only place the port the system chose is shown.
        app.Lifetime.ApplicationStarted.Register(() => app.Logger.LogInformation("Listening on {Addresses}", string.Join(", ", app.Urls)));
        return app;
    }

    /// <summary>
    /// The address when another process already listens on it, else null. Kestrel would find out
    /// only while the host starts, and report it as a host start failure with stack traces; this
    /// lets <c>serve</c> say it in one line. A port taken after this check still fails the start.
    /// </summary>
    public static string? AddressInUse(ServerOptions options)
    {
        if (options.Port == 0)
        {
            return null;
        }
        // As UseUrls binds: an IP address on itself, localhost on the loopback, any other name on every interface.
        IPAddress address = options.Host == "localhost" ? IPAddress.Loopback
            : IPAddress.TryParse(options.Host, out IPAddress? parsed) ? parsed
            : IPAddress.Any;
        var listener = new TcpListener(address, options.Port);
        try
        {
            listener.Start();
            return null;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return AddressOf(options);
        }
        catch (SocketException)
        {
            // Not ours to judge here (an address this machine does not have, say): Kestrel reports it.
            return null;
        }
        finally
        {
            listener.Stop();
        }
    }

    private static string AddressOf(ServerOptions options) =>
        $"http://{(options.Host.Contains(':') ? $"[{options.Host}]" : options.Host)}:{options.Port}";
}
