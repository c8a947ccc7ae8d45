using LlmServer.Inference.Sampling;
using LlmServer.Training.Data;

namespace LlmServer.Training.Batching;

/// <summary>
/// Decides which examples form each optimizer batch of an epoch, and how a batch is cut into
/// forward passes. Padding costs compute, so examples of similar length are batched together;
/// shuffling first (and shuffling the batches after) keeps the order random at the scale of an epoch.
/// </summary>
internal static class BatchPlanner
{
    /// <summary>Examples are sorted by length within windows of this many batches.</summary>
    public const int SortWindowBatches = 50;

    /// <summary>
    /// The batches of epoch <paramref name="epoch"/> (0-based) as example indices, longest example
    /// first within each batch. Depends only on the arguments, so a resumed run replays the epochs
    /// an uninterrupted one would have run.
    /// </summary>
    public static IReadOnlyList<int[]> PlanEpoch(IReadOnlyList<TrainingExample> examples, int batchSize, long seed, int epoch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        var random = new SeededRandom(EpochSeed(seed, epoch));
        int[] order = Enumerable.Range(0, examples.Count).ToArray();
        Shuffle(order, random);

        var batches = new List<int[]>();
        int window = SortWindowBatches * batchSize;
        for (int start = 0; start < order.Length; start += window)
        {
            // Stable, so equal lengths keep their shuffled order.
            int[] sorted = order.AsSpan(start, Math.Min(window, order.Length - start)).ToArray()
                .OrderByDescending(i => examples[i].Length).ToArray();
            for (int first = 0; first < sorted.Length; first += batchSize)
            {
                batches.Add(sorted[first..Math.Min(first + batchSize, sorted.Length)]);
            }
        }
        int[][] shuffled = batches.ToArray();
        Shuffle(shuffled, random);
        return shuffled;
    }

    public static int BatchesPerEpoch(int exampleCount, int batchSize) => (exampleCount + batchSize - 1) / batchSize;

    /// <summary>
    /// Cuts a batch (longest first) into consecutive forward passes of at most
    /// <paramref name="tokenBudget"/> padded tokens each (at least one example per pass).
    /// </summary>
    public static IReadOnlyList<int[]> MicroBatches(int[] batch, IReadOnlyList<TrainingExample> examples, int tokenBudget)
    {
        var microBatches = new List<int[]>();
        int first = 0;
        while (first < batch.Length)
        {
            // The first example of a pass is its longest, so it sets the padded length.
            int paddedLength = examples[batch[first]].Length;
            int count = Math.Max(1, Math.Min(batch.Length - first, tokenBudget / paddedLength));
            microBatches.Add(batch[first..(first + count)]);
            first += count;
        }
        return microBatches;
    }

    private static long EpochSeed(long seed, int epoch) =>
        unchecked((long)((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)epoch));

    private static void Shuffle<T>(T[] items, SeededRandom random)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = (int)(random.NextUInt64() % (ulong)(i + 1));
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}
