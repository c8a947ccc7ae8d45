using System.Diagnostics;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;
using LlmServer.Inference.Tests.Models;

namespace LlmServer.Inference.Tests.Engine;

/// <summary>The phase timestamps the engine reports in a request's final event (the API turns them into trace spans).</summary>
public sealed class RequestTimingsTests : IAsyncLifetime
{
    private const string Fixture = "gpt2-random-2l-64d";
    private EngineClient _engine = null!;

    public Task InitializeAsync()
    {
        _engine = EngineFactory.Start(Fixture);
        return _engine.Ready;
    }

    public async Task DisposeAsync() => await _engine.DisposeAsync();

    [Fact]
    public async Task Only_the_final_event_has_timings_and_they_are_in_phase_order()
    {
        long before = Stopwatch.GetTimestamp();
        var events = new List<GenerationEvent>();
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = 4, IgnoreEos = true };
        await foreach (GenerationEvent generated in _engine.GenerateAsync(new EngineSubmission("timed", ReferenceCase.Load(Fixture)[0].PromptIds, sampling)))
        {
            events.Add(generated);
        }
        long after = Stopwatch.GetTimestamp();

        Assert.All(events[..^1], e => Assert.Null(e.Timings));
        RequestTimings timings = events[^1].Timings!;
        Assert.InRange(timings.ArrivalTimestamp, before, after);
        Assert.NotNull(timings.FirstScheduledTimestamp);
        Assert.NotNull(timings.FirstTokenTimestamp);
        Assert.True(timings.ArrivalTimestamp <= timings.FirstScheduledTimestamp);
        Assert.True(timings.FirstScheduledTimestamp < timings.FirstTokenTimestamp);
        Assert.True(timings.FirstTokenTimestamp < timings.FinishedTimestamp);
        Assert.InRange(timings.FinishedTimestamp, before, after);
    }

    [Fact]
    public async Task A_refused_request_reports_arrival_and_finish_only()
    {
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = 4 };
        GenerationEvent final = null!;
        await foreach (GenerationEvent generated in _engine.GenerateAsync(new EngineSubmission("refused", [int.MaxValue], sampling)))
        {
            final = generated;
        }
        Assert.Equal(FinishReason.Error, final.FinishReason);
        Assert.Null(final.Timings!.FirstScheduledTimestamp);
        Assert.Null(final.Timings.FirstTokenTimestamp);
        Assert.True(final.Timings.ArrivalTimestamp <= final.Timings.FinishedTimestamp);
    }
}
