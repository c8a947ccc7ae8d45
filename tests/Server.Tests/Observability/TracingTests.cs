using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json;
using LlmServer.FineTuning;
using LlmServer.Host;
using LlmServer.Inference.Tests;
using LlmServer.Observability;
using LlmServer.Tests.FineTuning;

namespace LlmServer.Tests.Observability;

/// <summary>
/// The spans a request and a fine-tuning job make. Activity listeners see every span in the
/// process, and other tests run at the same time, so each test picks out its own spans: by the
/// trace id it sent in traceparent, or by its job's id.
/// </summary>
public sealed class TracingTests : IDisposable
{
    private const string Model = "gpt2-random-2l-64d";
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ActivityListener _listener;

    public TracingTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is ServerTelemetry.SourceName or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    private async Task<Activity> WaitForAsync(Func<Activity, bool> match, TimeSpan timeout)
    {
        Activity? found = null;
        await Poll.UntilAsync(() => (found = _stopped.FirstOrDefault(match)) is not null, timeout, "the span to stop");
        return found!;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_chat_request_has_queue_prefill_and_decode_spans_in_order_inside_its_http_span(bool stream)
    {
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB"]);
        ActivityTraceId traceId = ActivityTraceId.CreateRandom();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(JsonSerializer.Serialize(new
            {
                model = Model,
                messages = new[] { new { role = "user", content = "Hello" } },
                max_tokens = 6,
                temperature = 0,
                stream,
            }), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("traceparent", $"00-{traceId}-{ActivitySpanId.CreateRandom()}-01");
        using HttpResponseMessage response = await server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await response.Content.ReadAsStringAsync();
        string requestId = Assert.Single(response.Headers.GetValues("x-request-id"));

        Activity http = await WaitForAsync(a => a.TraceId == traceId && a.Source.Name == "Microsoft.AspNetCore", TimeSpan.FromSeconds(10));
        Assert.Equal(requestId, http.GetTagItem(RequestIdMiddleware.TagName));
        Assert.Equal(Model, http.GetTagItem("gen_ai.request.model"));
        Assert.Equal(6, http.GetTagItem("gen_ai.usage.output_tokens"));

        Activity[] phases = _stopped.Where(a => a.TraceId == traceId && a.Source.Name == ServerTelemetry.SourceName).OrderBy(a => a.StartTimeUtc).ToArray();
        Assert.Equal([ServerTelemetry.QueueSpan, ServerTelemetry.PrefillSpan, ServerTelemetry.DecodeSpan], phases.Select(a => a.OperationName));
        Assert.All(phases, phase => Assert.Equal(http.SpanId, phase.ParentSpanId));
        for (int i = 1; i < phases.Length; i++)
        {
            Assert.True(phases[i - 1].StartTimeUtc + phases[i - 1].Duration <= phases[i].StartTimeUtc, $"{phases[i - 1].OperationName} ends after {phases[i].OperationName} starts");
        }
        TimeSpan slack = TimeSpan.FromMilliseconds(1); // two clocks read a moment apart
        Assert.True(phases[0].StartTimeUtc >= http.StartTimeUtc - slack, "the queue starts before the request");
        Assert.True(phases[^1].StartTimeUtc + phases[^1].Duration <= http.StartTimeUtc + http.Duration + slack, "decode ends after the request");
        TimeSpan total = phases.Aggregate(TimeSpan.Zero, (sum, a) => sum + a.Duration);
        Assert.True(total <= http.Duration + slack, $"phases take {total}, the request {http.Duration}");
        Assert.True(phases[2].Duration > TimeSpan.Zero);
    }

    [Fact]
    public async Task A_fine_tuning_job_is_a_span_with_its_phases()
    {
        const string adminKey = "sk-trace-admin", inferenceKey = "sk-trace-inference";
        using var data = new TemporaryDataDirectory("tracing");
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model),
            "--kv-cache-memory", "64MiB", "--api-key", inferenceKey, "--admin-key", adminKey, "--data-dir", data.Path]);
        var admin = new AdminClient(server, adminKey, inferenceKey);
        string training = await admin.UploadAsync(KeywordTask.ChatJsonl(8, seed: 3), "train.jsonl");
        string id = (await admin.CreateJobAsync($$"""
            {"model":"{{Model}}","training_file":"{{training}}","hyperparameters":{"n_epochs":1,"batch_size":4} }
            """)).GetProperty("id").GetString()!;

        Activity job = await WaitForAsync(a => a.OperationName == FineTuningWorker.JobSpan && id.Equals(a.GetTagItem(FineTuningWorker.JobIdTag)), TimeSpan.FromMinutes(2));
        Assert.Equal("Succeeded", job.GetTagItem("llmserver.fine_tuning.status"));
        Assert.Equal(default, job.ParentSpanId);
        string[] phases = _stopped.Where(a => a.ParentSpanId == job.SpanId && a.TraceId == job.TraceId).OrderBy(a => a.StartTimeUtc).Select(a => a.OperationName).ToArray();
        Assert.Equal(["fine_tuning.load_data", "fine_tuning.train", "fine_tuning.serve"], phases);
        Assert.Contains(_stopped, a => a.OperationName == "fine_tuning.validate_files" && id.Equals(a.GetTagItem(FineTuningWorker.JobIdTag)));
    }
}
