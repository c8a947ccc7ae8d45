using System.Diagnostics;

namespace LlmServer.Inference.Tests;

/// <summary>
/// Waits for a condition that nothing signals to the test: another process's state, a page, a log
/// line written after the response, the engine thread's statistics. The condition is checked at
/// once and then again and again, a little less often as time goes on, until it holds; once the
/// timeout has passed it fails naming what it waited for. Where something does signal (a task, an
/// event), await that instead. Linked into every test project that waits this way.
/// </summary>
internal static class Poll
{
    private static readonly TimeSpan FirstInterval = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan LongestInterval = TimeSpan.FromMilliseconds(100);

    /// <param name="timeout">How long the condition may take; <see cref="Timeout.InfiniteTimeSpan"/> for as long as it takes.</param>
    /// <param name="what">What is awaited, for the failure: "the job to finish".</param>
    /// <param name="lastSeen">What was seen instead, for the failure (read once, at the timeout).</param>
    public static Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what, Func<string>? lastSeen = null) =>
        UntilAsync(() => Task.FromResult(condition()), timeout, what, lastSeen);

    /// <inheritdoc cref="UntilAsync(Func{bool}, TimeSpan, string, Func{string}?)"/>
    public static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what, Func<string>? lastSeen = null)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan interval = FirstInterval;
        while (!await condition())
        {
            if (timeout != Timeout.InfiniteTimeSpan && clock.Elapsed >= timeout)
            {
                string seen = lastSeen is null ? "" : $"; {lastSeen()}";
                throw new TimeoutException($"timed out after {timeout.TotalSeconds:0.###} s waiting for {what}{seen}");
            }
            await Task.Delay(interval);
            interval = TimeSpan.FromTicks(Math.Min(interval.Ticks * 2, LongestInterval.Ticks));
        }
    }
}
