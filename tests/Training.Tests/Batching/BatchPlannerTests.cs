using LlmServer.Training.Batching;
using LlmServer.Training.Data;

namespace LlmServer.Training.Tests.Batching;

public sealed class BatchPlannerTests
{
    private static readonly List<TrainingExample> Examples = RandomLengths(count: 403, seed: 5);

    [Fact]
    public void Every_example_is_in_exactly_one_batch_of_an_epoch()
    {
        IReadOnlyList<int[]> batches = BatchPlanner.PlanEpoch(Examples, batchSize: 8, seed: 1, epoch: 0);

        Assert.Equal(BatchPlanner.BatchesPerEpoch(403, 8), batches.Count);
        Assert.Equal(51, batches.Count);
        Assert.Equal(Enumerable.Range(0, 403), batches.SelectMany(b => b).Order());
        Assert.Equal(50, batches.Count(b => b.Length == 8));
        Assert.Single(batches, b => b.Length == 3);
    }

    [Fact]
    public void The_plan_depends_only_on_seed_and_epoch()
    {
        Assert.Equal(BatchPlanner.PlanEpoch(Examples, 8, seed: 1, epoch: 2), BatchPlanner.PlanEpoch(Examples, 8, seed: 1, epoch: 2));
        Assert.NotEqual(BatchPlanner.PlanEpoch(Examples, 8, seed: 1, epoch: 2), BatchPlanner.PlanEpoch(Examples, 8, seed: 1, epoch: 3));
        Assert.NotEqual(BatchPlanner.PlanEpoch(Examples, 8, seed: 1, epoch: 2), BatchPlanner.PlanEpoch(Examples, 8, seed: 2, epoch: 2));
    }

    [Fact]
    public void Examples_of_similar_length_share_batches_so_little_is_padding()
    {
        IReadOnlyList<int[]> planned = BatchPlanner.PlanEpoch(Examples, 8, seed: 1, epoch: 0);
        int[][] shuffledOnly = Enumerable.Range(0, 403).OrderBy(i => (i * 7919) % 403).Chunk(8).ToArray();

        Assert.True(PaddedShare(planned) < PaddedShare(shuffledOnly) / 4,
            $"planned batches are {PaddedShare(planned):P0} padding, plain shuffled ones {PaddedShare(shuffledOnly):P0}");
        Assert.All(planned, batch => Assert.Equal(batch.OrderByDescending(i => Examples[i].Length).Select(i => Examples[i].Length), batch.Select(i => Examples[i].Length)));
    }

    [Fact]
    public void A_batch_is_cut_into_passes_within_the_token_budget()
    {
        int[] batch = BatchPlanner.PlanEpoch(Examples, 16, seed: 1, epoch: 0)[0];

        IReadOnlyList<int[]> passes = BatchPlanner.MicroBatches(batch, Examples, tokenBudget: 200);

        Assert.Equal(batch, passes.SelectMany(p => p));
        Assert.All(passes, p => Assert.True(p.Length == 1 || p.Length * Examples[p[0]].Length <= 200));
        Assert.Single(BatchPlanner.MicroBatches(batch, Examples, tokenBudget: 100_000));
        Assert.Equal(batch.Length, BatchPlanner.MicroBatches(batch, Examples, tokenBudget: 1).Count);
    }

    private static double PaddedShare(IEnumerable<int[]> batches)
    {
        long real = 0, padded = 0;
        foreach (int[] batch in batches)
        {
            int longest = batch.Max(i => Examples[i].Length);
            real += batch.Sum(i => Examples[i].Length);
            padded += (long)longest * batch.Length;
        }
        return 1 - (double)real / padded;
    }

    private static List<TrainingExample> RandomLengths(int count, int seed)
    {
        var random = new Random(seed);
        return Enumerable.Range(0, count).Select(_ =>
        {
            int length = random.Next(2, 120);
            return new TrainingExample(new int[length], Enumerable.Repeat(true, length).ToArray());
        }).ToList();
    }
}
