using System.Diagnostics.Metrics;
using LlmServer.Host;
using LlmServer.Storage;
using Microsoft.Extensions.Options;

namespace LlmServer.FineTuning;

/// <summary>
/// Fine-tuning jobs by status as a gauge, read from the job store at each scrape; Prometheus shows
/// it as llmserver_fine_tuning_jobs{status="running"}. Every status is reported (zero included) so
/// dashboards and alerts see the series from the start. Until the data directory holds a database
/// there can be no jobs, and the store is not opened: a scrape must not create the data directory.
/// </summary>
public sealed class FineTuningJobMetrics : IDisposable
{
    public const string MeterName = "LlmServer.FineTuning";

    private readonly Meter _meter = new(MeterName);
    private readonly IServiceProvider _services;
    private readonly string _databasePath;

    public FineTuningJobMetrics(IServiceProvider services, IOptions<ServerOptions> options)
    {
        _services = services;
        _databasePath = Path.Combine(Path.GetFullPath(options.Value.DataDir), FineTuningStore.DatabaseFileName);
        _meter.CreateObservableGauge("llmserver.fine_tuning_jobs", Observe,
            description: "Fine-tuning jobs in the data directory's store, by status.");
    }

    private IEnumerable<Measurement<long>> Observe()
    {
        IReadOnlyDictionary<JobStatus, long> counts = File.Exists(_databasePath)
            ? _services.GetRequiredService<JobStore>().CountJobsByStatus()
            : Enum.GetValues<JobStatus>().ToDictionary(status => status, _ => 0L);
        return counts.Select(pair => new Measurement<long>(pair.Value, new KeyValuePair<string, object?>("status", pair.Key.ToWire())));
    }

    public void Dispose() => _meter.Dispose();
}
