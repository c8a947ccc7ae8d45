using System.Diagnostics.Metrics;
using LlmServer.Inference.Engine;
using LlmServer.Jobs;
using OpenTelemetry.Metrics;

namespace LlmServer.Hosting;

/// <summary>
/// Metrics through OpenTelemetry, scraped by Prometheus at GET /metrics: the engine's meter
/// (requests, KV cache, prefix cache, tokens, latency histograms), HTTP server metrics, .NET
/// runtime metrics, the process's resident memory, and fine-tuning jobs by status.
/// </summary>
public static class MetricsExport
{
    public const string ProcessMeterName = "LlmServer.Process";
    private static readonly Meter ProcessMeter = new(ProcessMeterName);

    static MetricsExport()
    {
        ProcessMeter.CreateObservableGauge("llmserver.process_resident_memory", () => Environment.WorkingSet, unit: "By",
            description: "Resident set size of the server process.");
    }

    public static IServiceCollection AddMetricsExport(this IServiceCollection services)
    {
        services.AddOpenTelemetry().WithMetrics(metrics =>
        {
            metrics.AddMeter(EngineMetrics.MeterName, ProcessMeterName, FineTuningJobMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0);
            foreach ((string instrument, double[] buckets) in EngineMetrics.HistogramBuckets)
            {
                metrics.AddView(instrument, new ExplicitBucketHistogramConfiguration { Boundaries = buckets });
            }
        });
        return services;
    }
}
