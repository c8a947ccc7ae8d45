using LlmServer.Bench.LoadTest;

namespace LlmServer.Bench.Tests.LoadTest;

public sealed class ArrivalScheduleTests
{
    [Theory]
    [InlineData(null)]
    [InlineData(double.PositiveInfinity)]
    public void WithoutAFiniteRate_EveryRequestGoesAtOnce(double? rate)
    {
        Assert.All(ArrivalSchedule.Offsets(5, rate, seed: 0), offset => Assert.Equal(TimeSpan.Zero, offset));
    }

    [Fact]
    public void PoissonArrivals_StartAtOnce_RiseSteadily_AndAverageTheRate()
    {
        TimeSpan[] offsets = ArrivalSchedule.Offsets(20_000, 100, seed: 1);

        Assert.Equal(TimeSpan.Zero, offsets[0]);
        Assert.True(offsets.Zip(offsets.Skip(1)).All(pair => pair.First <= pair.Second));
        // 19,999 exponential gaps of mean 10 ms: the standard error of their mean is 10 ms / sqrt(19,999), about 0.07 ms.
        double meanGapMs = offsets[^1].TotalMilliseconds / (offsets.Length - 1);
        Assert.InRange(meanGapMs, 9.7, 10.3);
    }

    [Fact]
    public void SameSeed_SameSchedule_OtherSeed_OtherSchedule()
    {
        Assert.Equal(ArrivalSchedule.Offsets(10, 5, seed: 7), ArrivalSchedule.Offsets(10, 5, seed: 7));
        Assert.NotEqual(ArrivalSchedule.Offsets(10, 5, seed: 7), ArrivalSchedule.Offsets(10, 5, seed: 8));
    }
}
