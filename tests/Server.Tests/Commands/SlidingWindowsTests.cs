using LlmServer.Commands;

namespace LlmServer.Tests.Commands;

public class SlidingWindowsTests
{
    [Theory]
    [InlineData(300, 40, 15)]
    [InlineData(300, 40, 39)]
    [InlineData(300, 40, 1)]
    [InlineData(41, 40, 20)]
    [InlineData(40, 40, 20)]
    [InlineData(12, 40, 20)]
    [InlineData(2, 2, 1)]
    [InlineData(1000, 127, 63)]
    public void Every_token_but_the_first_is_scored_once_from_a_window_of_at_most_the_context(int tokens, int context, int stride)
    {
        IReadOnlyList<ScoringWindow> windows = SlidingWindows.Plan(tokens, context, stride);

        int[] timesScored = new int[tokens];
        foreach (ScoringWindow window in windows)
        {
            Assert.InRange(window.Length, 2, context);
            Assert.InRange(window.FirstScored, window.Start + 1, window.End - 1);
            for (int token = window.FirstScored; token < window.End; token++)
            {
                timesScored[token]++;
            }
        }
        Assert.Equal(0, timesScored[0]);
        Assert.All(timesScored[1..], count => Assert.Equal(1, count));
        // Past the first window, each scored token sees at least context - stride tokens before it.
        Assert.All(windows.Skip(1), w => Assert.True(w.FirstScored - w.Start >= context - stride, $"{w}"));
        Assert.Equal(tokens <= context ? 1 : 1 + (tokens - context + stride - 1) / stride, windows.Count);
    }

    [Fact]
    public void A_text_under_two_tokens_has_no_window() => Assert.Empty(SlidingWindows.Plan(1, 40, 20));

    [Theory]
    [InlineData(40, 40)]
    [InlineData(40, 0)]
    [InlineData(1, 1)]
    public void A_stride_that_would_leave_a_token_without_left_context_is_refused(int context, int stride) =>
        Assert.ThrowsAny<ArgumentOutOfRangeException>(() => SlidingWindows.Plan(100, context, stride));
}
