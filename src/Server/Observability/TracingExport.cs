using LlmServer.Host;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LlmServer.Observability;

/// <summary>
/// Traces through OpenTelemetry: ASP.NET Core's span per HTTP request, and ours (engine phases,
/// fine-tuning jobs). Spans always exist, so logs carry trace and span ids; they leave the process
/// only with --otlp-endpoint, which also sends the metrics that /metrics serves.
/// </summary>
public static class TracingExport
{
    public static IServiceCollection AddTracingExport(this IServiceCollection services)
    {
        services.AddOpenTelemetry()
            .ConfigureResource(resource =>
            {
                if (string.IsNullOrEmpty(Environment.GetEnvironmentVariable("OTEL_SERVICE_NAME")))
                {
                    resource.AddService("llmserver");
                }
            })
            .WithTracing(tracing => tracing.AddSource(ServerTelemetry.SourceName)
                .AddAspNetCoreInstrumentation(aspNetCore => aspNetCore.Filter = context =>
                    !context.Request.Path.StartsWithSegments("/metrics") && !context.Request.Path.StartsWithSegments("/health")));
        // The collector is an option, known once the providers are built: the exporters join them
        // then, built as AddOtlpExporter builds them (gRPC, batches, OTEL_* settings from the environment).
        services.ConfigureOpenTelemetryTracerProvider((provider, tracing) =>
        {
            if (CollectorOf(provider) is { } endpoint)
            {
                var batch = new BatchExportActivityProcessorOptions();
                tracing.AddProcessor(new BatchActivityExportProcessor(new OtlpTraceExporter(new OtlpExporterOptions { Endpoint = endpoint }),
                    batch.MaxQueueSize, batch.ScheduledDelayMilliseconds, batch.ExporterTimeoutMilliseconds, batch.MaxExportBatchSize));
            }
        });
        services.ConfigureOpenTelemetryMeterProvider((provider, metrics) =>
        {
            if (CollectorOf(provider) is { } endpoint)
            {
                var periodic = new PeriodicExportingMetricReaderOptions();
                metrics.AddReader(new PeriodicExportingMetricReader(new OtlpMetricExporter(new OtlpExporterOptions { Endpoint = endpoint }),
                    periodic.ExportIntervalMilliseconds ?? 60_000, periodic.ExportTimeoutMilliseconds ?? 30_000));
            }
        });
        return services;
    }

    private static Uri? CollectorOf(IServiceProvider provider) => provider.GetRequiredService<IOptions<ServerOptions>>().Value.OtlpEndpointUri;
}
