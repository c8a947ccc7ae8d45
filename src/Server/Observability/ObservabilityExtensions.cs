using LlmServer.Host;
using Microsoft.Extensions.Options;
using Serilog;

namespace LlmServer.Observability;

/// <summary>What an operator watches the server by: log lines, one per request among them, metrics, traces, and health.</summary>
public static class ObservabilityExtensions
{
    public static IServiceCollection AddObservability(this IServiceCollection services)
    {
        services.AddServerLogging();
        services.AddMetricsExport();
        services.AddTracingExport();
        services.AddSingleton<RequestLog>();
        return services;
    }

    /// <summary>Outside the error middleware, so the line shows the status the client got.</summary>
    public static WebApplication UseRequestLog(this WebApplication app)
    {
        bool logPrompts = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value.LogPrompts;
        app.UseSerilogRequestLogging(logging => RequestLog.Configure(logging, app.Services.GetRequiredService<Serilog.ILogger>(), logPrompts));
        return app;
    }

    /// <summary>GET /metrics for Prometheus, and the liveness and readiness probes.</summary>
    public static IEndpointRouteBuilder MapObservability(this IEndpointRouteBuilder app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapHealthEndpoints();
        return app;
    }
}
