namespace LlmServer.Bench.LoadTest;

/// <summary>
/// When each request is sent, relative to the start of the run. A finite rate gives a Poisson process
/// (exponentially distributed gaps, vLLM's default burstiness of 1), the first request going out at once.
/// </summary>
internal static class ArrivalSchedule
{
    public static TimeSpan[] Offsets(int count, double? requestsPerSecond, int seed)
    {
        var offsets = new TimeSpan[count];
        if (requestsPerSecond is not { } rate || double.IsPositiveInfinity(rate))
        {
            return offsets;
        }
        // A stream of its own, so that the arrival times do not depend on how many random numbers the prompts used.
        var random = new Random(unchecked(seed * 7919 + 1));
        double seconds = 0;
        for (int i = 1; i < count; i++)
        {
            // Inverse-CDF sampling; 1 - U lies in (0, 1], so the logarithm is finite.
            seconds += -Math.Log(1 - random.NextDouble()) / rate;
            offsets[i] = TimeSpan.FromSeconds(seconds);
        }
        return offsets;
    }
}
