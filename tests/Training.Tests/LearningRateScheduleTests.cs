using LlmServer.Training.FineTuning;

namespace LlmServer.Training.Tests;

public sealed class LearningRateScheduleTests
{
    [Fact]
    public void Warmup_climbs_linearly_to_the_peak_then_cosine_falls_to_the_floor()
    {
        var schedule = new LearningRateSchedule(peak: 1e-3, minFraction: 0.1, warmupSteps: 4, totalSteps: 14);

        Assert.Equal(0.25e-3, schedule.At(1), 15);
        Assert.Equal(0.5e-3, schedule.At(2), 15);
        Assert.Equal(1e-3, schedule.At(4), 15);
        // Halfway through the decay the cosine is at its middle: floor + (peak - floor) / 2.
        Assert.Equal(0.55e-3, schedule.At(9), 15);
        Assert.Equal(0.1e-3, schedule.At(14), 15);
        for (int step = 5; step <= 14; step++)
        {
            Assert.True(schedule.At(step) < schedule.At(step - 1));
        }
    }

    [Fact]
    public void Without_warmup_the_first_step_starts_the_decay()
    {
        var schedule = new LearningRateSchedule(peak: 2e-4, minFraction: 0, warmupSteps: 0, totalSteps: 2);

        Assert.Equal(1e-4, schedule.At(1), 15);
        Assert.Equal(0, schedule.At(2), 15);
    }

    [Fact]
    public void Warmup_from_a_fraction_rounds_up_and_explicit_steps_win()
    {
        var settings = new TrainingSettings { LearningRate = 1e-3, WarmupFraction = 0.03 };
        Assert.Equal(4, settings.Schedule(totalSteps: 110).WarmupSteps);
        Assert.Equal(10, (settings with { WarmupSteps = 10 }).Schedule(totalSteps: 100).WarmupSteps);
        Assert.Equal(1, settings.Schedule(totalSteps: 1).WarmupSteps);
        Assert.Equal(1e-3, settings.Schedule(totalSteps: 1).At(1), 15);
    }
}
