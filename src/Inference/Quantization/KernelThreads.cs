namespace LlmServer.Inference.Quantization;

/// <summary>
/// How the hand-written products split their work: each thread takes one contiguous range of output
/// columns, so every weight byte is read by exactly one core and no two threads write the same cache
/// line of the result. The count follows torch's (<c>--threads</c>), so the two never oversubscribe.
/// </summary>
internal static class KernelThreads
{
    private static int _count = Environment.ProcessorCount;

    public static int Count
    {
        get => _count;
        set => _count = Math.Max(1, value);
    }

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, outputs) in ranges that are multiples of <paramref name="block"/>.</summary>
    public static void ForOutputRanges(int outputs, int block, Action<int, int> body)
    {
        int threads = Math.Min(Count, Math.Max(1, outputs / (block * 4)));
        if (threads <= 1)
        {
            body(0, outputs);
            return;
        }
        int chunk = (outputs / threads + block - 1) / block * block;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int start = Math.Min(outputs, t * chunk);
            int end = t == threads - 1 ? outputs : Math.Min(outputs, start + chunk);
            if (start < end)
            {
                body(start, end);
            }
        });
    }
}
