using LlmServer.Training.Batching;
using LlmServer.Training.Data;
using static TorchSharp.torch;

namespace LlmServer.Training.Tests.Batching;

public sealed class LabeledBatchTests
{
    [Fact]
    public void Shorter_examples_are_right_padded_and_only_trained_next_tokens_are_labels()
    {
        var examples = new List<TrainingExample>
        {
            new([10, 11, 12, 13, 14], [false, false, true, true, true]),
            new([20, 21, 22], [false, true, false]),
        };

        using LabeledBatch batch = LabeledBatch.Create(examples, CPU);

        Assert.Equal([2L, 5], batch.InputIds.shape);
        Assert.Equal([10L, 11, 12, 13, 14, 20, 21, 22, 0, 0], batch.InputIds.data<long>().ToArray());
        // Position t is labelled with token t + 1 when that token is trained.
        Assert.Equal([-100L, 12, 13, 14, -100, 21, -100, -100, -100, -100], batch.Labels.data<long>().ToArray());
        Assert.Equal(4, batch.TrainedTokenCount);
    }

    [Fact]
    public void Loss_is_the_summed_cross_entropy_of_labelled_positions_and_accuracy_counts_their_argmax_hits()
    {
        var generator = new TorchSharp.torch.Generator(3);
        using Tensor logits = randn([2, 3, 5], generator: generator);                        // (B, T, V)
        long[] labelValues = [2, -100, 4, -100, -100, 0];
        using Tensor labels = tensor(labelValues, [2, 3], ScalarType.Int64);

        (Tensor lossSum, long correct) = TokenLoss.Sum(logits, labels);
        using (lossSum)
        {
            float[] flat = logits.data<float>().ToArray();
            double expected = 0;
            long hits = 0;
            for (int row = 0; row < 6; row++)
            {
                if (labelValues[row] < 0)
                {
                    continue;
                }
                float[] scores = flat[(row * 5)..(row * 5 + 5)];
                double logSumExp = Math.Log(scores.Sum(s => Math.Exp(s)));
                expected += logSumExp - scores[labelValues[row]];
                hits += Array.IndexOf(scores, scores.Max()) == labelValues[row] ? 1 : 0;
            }
            Assert.Equal(expected, lossSum.item<float>(), 1e-4);
            Assert.Equal(hits, correct);
        }
    }
}
