using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LlmServer.Hosting;

/// <summary>
/// Traces through OpenTelemetry: ASP.NET Core's span per HTTP request, and ours (engine phases,
/// fine-tuning jobs). Spans always exist, so logs carry trace and span ids; they leave the process
/// only with --otlp-endpoint, which also sends the metrics that /metrics serves.
/// </summary>
public static class TracingExport
{
    public static IServiceCollection AddTracingExport(this IServiceCollection services, string? otlpEndpoint)
    {
        Uri? endpoint = string.IsNullOrWhiteSpace(otlpEndpoint) ? null : new Uri(otlpEndpoint);
        OpenTelemetry.OpenTelemetryBuilder telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource =>
            {
                if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME")))
                {
                    resource.AddService("llmserver");
                }
            })
            .WithTracing(tracing =>
            {
                tracing.AddSource(ServerTelemetry.SourceName)
                    .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = context =>
                        !context.Request.Path.StartsWithSegments("/metrics") && !context.Request.Path.StartsWithSegments("/health"));
                if (endpoint is not null)
                {
                    tracing.AddOtlpExporter(otlp => otlp.Endpoint = endpoint);
                }
            });
        if (endpoint is not null)
        {
            telemetry.WithMetrics(metrics => metrics.AddOtlpExporter(otlp => otlp.Endpoint = endpoint));
        }
        return services;
    }

    public static bool IsValidEndpoint(string? value) =>
        string.IsNullOrWhiteSpace(value) || (Uri.TryCreate(value, UriKind.Absolute, out Uri? uri) && uri.Scheme is "http" or "https");
}
