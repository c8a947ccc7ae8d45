using LlmServer.Host;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;

namespace LlmServer.Observability;

/// <summary>The server's log lines: Serilog, in the format --log-format chose, on the console or a registered <see cref="LogOutput"/>.</summary>
public static class ServerLogging
{
    private const string TextTemplate = "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}";

    /// <summary>Each host keeps its own logger (not the static Log.Logger), so servers side by side in one process (the tests) log apart.</summary>
    public static IServiceCollection AddServerLogging(this IServiceCollection services) =>
        services.AddSerilog((provider, logger) => Configure(logger, provider), preserveStaticLogger: true);

    /// <summary>
    /// Information by default, ASP.NET Core's own chatter at Warning; configuration (Serilog:MinimumLevel
    /// in appsettings.json, LLMSERVER_Serilog__MinimumLevel__Default=Debug) is read after, so it wins.
    /// </summary>
    private static void Configure(LoggerConfiguration logger, IServiceProvider services)
    {
        logger.MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.Hosting", LogEventLevel.Warning)
            .ReadFrom.Configuration(services.GetRequiredService<IConfiguration>())
            .Enrich.FromLogContext();
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        ITextFormatter? json = services.GetRequiredService<IOptions<ServerOptions>>().Value.LogFormat == "json" ? new CompactJsonFormatter() : null;
        if (services.GetService<LogOutput>() is { } output)
        {
            logger.WriteTo.Sink(output.Sink(json ?? new MessageTemplateTextFormatter(TextTemplate, invariant)));
        }
        else if (json is not null)
        {
            logger.WriteTo.Console(json);
        }
        else
        {
            logger.WriteTo.Console(outputTemplate: TextTemplate, formatProvider: invariant);
        }
    }
}
