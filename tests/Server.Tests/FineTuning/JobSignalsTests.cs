using LlmServer.FineTuning;

namespace LlmServer.Tests.FineTuning;

public sealed class JobSignalsTests
{
    [Fact]
    public async Task Creations_while_the_worker_is_busy_are_one_wake_up()
    {
        var signals = new JobSignals();
        signals.NotifyJobCreated();
        signals.NotifyJobCreated();
        signals.NotifyJobCreated();

        await signals.WaitForJobAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(5));
        Task next = signals.WaitForJobAsync(CancellationToken.None);

        Assert.False(next.IsCompleted);
        signals.NotifyJobCreated();
        await next.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Waiting_stops_with_the_workers_token()
    {
        using var stopping = new CancellationTokenSource();
        Task wait = new JobSignals().WaitForJobAsync(stopping.Token);

        await stopping.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => wait);
    }

    [Fact]
    public void A_cancel_trips_that_jobs_token_only_and_is_not_lost_when_it_comes_first()
    {
        var signals = new JobSignals();
        CancellationToken running = signals.TokenFor("ftjob-a"), other = signals.TokenFor("ftjob-b");

        signals.Cancel("ftjob-a");
        signals.Cancel("ftjob-early");

        Assert.True(running.IsCancellationRequested);
        Assert.False(other.IsCancellationRequested);
        Assert.True(signals.TokenFor("ftjob-early").IsCancellationRequested);
        signals.Forget("ftjob-a");
        Assert.False(signals.TokenFor("ftjob-a").IsCancellationRequested); // a forgotten job starts afresh
    }
}
