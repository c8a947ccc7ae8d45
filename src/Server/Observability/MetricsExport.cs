using System.Diagnostics.Metrics;
using LlmServer.Inference.Engine;
using OpenTelemetry.Metrics;

namespace LlmServer.Observability;

/// <summary>
/// Metrics through OpenTelemetry, scraped by Prometheus at GET /metrics: the engine's meter
/// (requests, KV cache, prefix cache, tokens, latency histograms), HTTP server metrics, .NET
/// runtime metrics and the process's resident memory. Features add meters of their own (fine-tuning
/// jobs by status).
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
            metrics.AddMeter(EngineMetrics.MeterName, ProcessMeterName)
                .AddAspNetCoreInstrumentation()
                .AddRuntimeInstrumentation()
                // Samples carry no timestamps: Prometheus stamps each sample with the time of the
                // scrape, which is what a live gauge or counter means, and advises exporters not to
                // write their own (an explicit one opts the series out of staleness handling, and
                // readers that take a line's last word for its value misread it). The exporter we
                // pin (1.20.1-beta.1) writes none and has no option to; earlier versions wrote them
                // by default (1.15.3-beta.1 did, and the soak test took one for the live-tensor
                // count) until OpenTelemetry's specification said a Prometheus exporter MUST NOT and
                // the opt-out, DisableTimestamp, was removed. MetricsExportTests checks that none appear.
                .AddPrometheusExporter(prometheus => prometheus.ScrapeResponseCacheDurationMilliseconds = 0);
            foreach ((string instrument, double[] buckets) in EngineMetrics.HistogramBuckets)
            {
                metrics.AddView(instrument, new ExplicitBucketHistogramConfiguration { Boundaries = buckets });
            }
        });
        return services;
    }
}
