using LlmServer.Bench.LoadTest;

namespace LlmServer.Bench.Tests.LoadTest;

/// <summary>Expected values are numpy's (<c>np.percentile</c> default "linear", <c>np.std</c> with ddof=0), worked out by hand.</summary>
public sealed class LatencyStatisticsTests
{
    [Theory]
    // [1,2,3,4]: rank = p/100 * 3
    [InlineData(new[] { 1.0, 2, 3, 4 }, 0, 1.0)]
    [InlineData(new[] { 1.0, 2, 3, 4 }, 50, 2.5)]
    [InlineData(new[] { 1.0, 2, 3, 4 }, 99, 3.97)]
    [InlineData(new[] { 1.0, 2, 3, 4 }, 100, 4.0)]
    // [15,20,35,40,50]: rank = p/100 * 4
    [InlineData(new[] { 15.0, 20, 35, 40, 50 }, 25, 20.0)]
    [InlineData(new[] { 15.0, 20, 35, 40, 50 }, 50, 35.0)]
    [InlineData(new[] { 15.0, 20, 35, 40, 50 }, 90, 46.0)]
    [InlineData(new[] { 15.0, 20, 35, 40, 50 }, 99, 49.6)]
    // Unsorted input: [3.25, 7, 10.5] once sorted, rank 1.98 for p99.
    [InlineData(new[] { 10.5, 3.25, 7.0 }, 50, 7.0)]
    [InlineData(new[] { 10.5, 3.25, 7.0 }, 99, 10.43)]
    [InlineData(new[] { 7.0 }, 99, 7.0)]
    public void Percentile_InterpolatesLinearlyBetweenRanks_LikeNumpy(double[] samples, double percent, double expected)
    {
        Assert.Equal(expected, LatencyStatistics.Percentile(samples, percent), 10);
    }

    [Fact]
    public void Percentile_OfNothing_IsZero()
    {
        Assert.Equal(0, LatencyStatistics.Percentile([], 99));
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(100.5)]
    public void Percentile_OutsideZeroToHundred_Throws(double percent)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LatencyStatistics.Percentile([1, 2], percent));
    }

    [Fact]
    public void StandardDeviation_IsThePopulationOne()
    {
        // Mean 5, squared deviations sum to 32 over 8 samples: sqrt(4) = 2 (the sample std would be 2.14).
        Assert.Equal(2.0, LatencyStatistics.StandardDeviation([2, 4, 4, 4, 5, 5, 7, 9]), 12);
        Assert.Equal(0, LatencyStatistics.StandardDeviation([]));
    }

    [Fact]
    public void Summarize_ReportsCountMeanMedianStdAndP99()
    {
        LatencySummary summary = LatencyStatistics.Summarize([50, 15, 40, 20, 35]);

        Assert.Equal(5, summary.Count);
        Assert.Equal(32.0, summary.Mean, 12);
        Assert.Equal(35.0, summary.Median, 12);
        // Deviations -17, -12, 3, 8, 18: squares sum to 830, / 5 = 166.
        Assert.Equal(Math.Sqrt(166), summary.Std, 12);
        Assert.Equal(49.6, summary.P99, 12);
    }

    [Fact]
    public void Summarize_OfNothing_IsAllZeros()
    {
        Assert.Equal(LatencySummary.Empty, LatencyStatistics.Summarize([]));
        Assert.Equal(new LatencySummary(0, 0, 0, 0, 0), LatencySummary.Empty);
    }

    [Fact]
    public void TimePerOutputToken_SpreadsTheTimeAfterTheFirstTokenOverTheRest()
    {
        // 1000 ms in all, the first token at 100 ms, nine more tokens in the remaining 900 ms.
        Assert.Equal(100.0, LatencyStatistics.TimePerOutputToken(1000, 100, 10));
        Assert.Equal(900.0, LatencyStatistics.TimePerOutputToken(1000, 100, 2));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void TimePerOutputToken_IsUndefinedWithoutASecondToken(int outputTokens)
    {
        Assert.Null(LatencyStatistics.TimePerOutputToken(1000, 100, outputTokens));
    }
}
