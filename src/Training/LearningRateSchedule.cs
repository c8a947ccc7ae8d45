namespace LlmServer.Training;

/// <summary>
/// Linear warmup to the peak, then cosine decay to <c>peak * minFraction</c> at the last step.
/// Steps count from 1: the first optimizer step already learns (transformers' schedule spends
/// its step 0 at learning rate 0).
/// </summary>
public sealed class LearningRateSchedule
{
    private readonly double _peak;
    private readonly double _minimum;

    public LearningRateSchedule(double peak, double minFraction, int warmupSteps, int totalSteps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, 1);
        _peak = peak;
        _minimum = peak * minFraction;
        WarmupSteps = Math.Clamp(warmupSteps, 0, totalSteps);
        TotalSteps = totalSteps;
    }

    public int WarmupSteps { get; }
    public int TotalSteps { get; }

    /// <summary>The learning rate of optimizer step <paramref name="step"/> (1-based).</summary>
    public double At(int step)
    {
        if (step <= WarmupSteps)
        {
            return _peak * step / WarmupSteps;
        }
        int decaySteps = TotalSteps - WarmupSteps;
        double progress = decaySteps == 0 ? 1 : (double)(step - WarmupSteps) / decaySteps;
        return _minimum + (_peak - _minimum) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(progress, 1)));
    }
}
