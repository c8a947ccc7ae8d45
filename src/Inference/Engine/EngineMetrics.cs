using System.Diagnostics.Metrics;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>
/// The engine's metrics, on a System.Diagnostics.Metrics meter so that any listener (the server
/// exports them to Prometheus through OpenTelemetry) can read them without the engine knowing.
/// Names follow vLLM's with our prefix; the Prometheus exporter turns "llmserver.x" with unit "s"
/// into "llmserver_x_seconds" and counters into "..._total".
/// </summary>
public sealed class EngineMetrics : IDisposable
{
    public const string MeterName = "LlmServer.Engine";

    private readonly Meter _meter;
    private readonly Histogram<double> _timeToFirstToken;
    private readonly Histogram<double> _interTokenLatency;
    private readonly Histogram<double> _queueTime;
    private readonly Histogram<double> _requestLatency;
    private readonly Counter<long> _finishedRequests;

    public EngineMetrics(Func<EngineStatistics> statistics)
    {
        _meter = new Meter(MeterName);
        _meter.CreateObservableGauge("llmserver.num_requests_running", () => statistics().RunningRequests,
            description: "Requests holding KV-cache blocks and running in the engine's batches.");
        _meter.CreateObservableGauge("llmserver.num_requests_waiting", () => statistics().WaitingRequests,
            description: "Requests admitted and waiting for a place in the batch.");
        _meter.CreateObservableGauge("llmserver.kv_cache_usage_perc", () => statistics().KvCacheUsage,
            description: "Fraction of KV-cache blocks held by requests (1 = full).");
        _meter.CreateObservableCounter("llmserver.prefix_cache_queries", () => statistics().PrefixCacheQueries,
            description: "Prompt tokens looked up in the prefix cache.");
        _meter.CreateObservableCounter("llmserver.prefix_cache_hits", () => statistics().PrefixCacheHits,
            description: "Prompt tokens whose KV blocks came from the prefix cache.");
        _meter.CreateObservableCounter("llmserver.prompt_tokens", () => statistics().PromptTokens,
            description: "Prompt tokens computed (prefix-cache hits excluded, recomputation after preemption included).");
        _meter.CreateObservableCounter("llmserver.generation_tokens", () => statistics().GenerationTokens,
            description: "Tokens generated.");
        _meter.CreateObservableCounter("llmserver.num_preemptions", () => statistics().Preemptions,
            description: "Requests preempted to free KV-cache blocks.");
        _meter.CreateObservableGauge("llmserver.torch_live_tensors", () => TorchSharp.torch.Tensor.TotalCount,
            description: "TorchSharp tensors alive in the process; flat at idle, or something leaks.");
        _timeToFirstToken = _meter.CreateHistogram<double>("llmserver.time_to_first_token", "s",
            "Time from a request's arrival at the engine to its first generated token.");
        _interTokenLatency = _meter.CreateHistogram<double>("llmserver.inter_token_latency", "s",
            "Time between two consecutive generated tokens of one request.");
        _queueTime = _meter.CreateHistogram<double>("llmserver.request_queue_time", "s",
            "Time a request waited before its first engine step.");
        _requestLatency = _meter.CreateHistogram<double>("llmserver.e2e_request_latency", "s",
            "Time from a request's arrival at the engine to its last token.");
        _finishedRequests = _meter.CreateCounter<long>("llmserver.request_success",
            description: "Finished requests, by finish reason.");
    }

    /// <summary>vLLM's bucket edges, in seconds, for the latency histograms.</summary>
    public static IReadOnlyDictionary<string, double[]> HistogramBuckets { get; } = new Dictionary<string, double[]>
    {
        ["llmserver.time_to_first_token"] = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640],
        ["llmserver.inter_token_latency"] = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80],
        ["llmserver.request_queue_time"] = [0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 1, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960],
        ["llmserver.e2e_request_latency"] = [0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920],
    };

    /// <summary>Records the time in the queue of a request just scheduled for the first time.</summary>
    public void RecordQueueTime(RequestTimings timings) => _queueTime.Record(timings.QueueTime.TotalSeconds);

    /// <summary>Records the latency of a request's token just generated: time to first token, or the gap since the previous one.</summary>
    public void RecordToken(RequestTimings timings)
    {
        if (timings.LastInterTokenLatency is TimeSpan gap)
        {
            _interTokenLatency.Record(gap.TotalSeconds);
        }
        else
        {
            _timeToFirstToken.Record(timings.TimeToFirstToken.TotalSeconds);
        }
    }

    public void RecordFinished(FinishReason reason, RequestTimings timings)
    {
        _requestLatency.Record(timings.Latency.TotalSeconds);
        _finishedRequests.Add(1, new KeyValuePair<string, object?>("finished_reason", reason.ToString().ToLowerInvariant()));
    }

    public void Dispose() => _meter.Dispose();
}
