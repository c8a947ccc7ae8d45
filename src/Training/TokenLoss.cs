using LlmServer.Training.Batching;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Training;

/// <summary>Cross-entropy and accuracy over the labelled positions of a batch.</summary>
internal static class TokenLoss
{
    /// <summary>
    /// The summed cross-entropy of every labelled position (a scalar tensor, differentiable) and how
    /// many of them the argmax predicts right. Summed, not averaged, so the caller can divide by the
    /// trained tokens of a whole batch split across passes.
    /// </summary>
    public static (Tensor LossSum, long Correct) Sum(Tensor logits, Tensor labels)
    {
        long vocabulary = logits.shape[^1];
        using Tensor flatLogits = logits.view(-1, vocabulary);                           // (B*T, V)
        using Tensor flatLabels = labels.view(-1);                                       // (B*T)
        Tensor lossSum = functional.cross_entropy(flatLogits, flatLabels,
            ignore_index: LabeledBatch.IgnoredLabel, reduction: Reduction.Sum);
        long correct;
        using (no_grad())
        {
            // An ignored label (-100) never equals an argmax, so only labelled positions count.
            using Tensor predictions = flatLogits.argmax(-1);                            // (B*T)
            using Tensor hits = predictions.eq(flatLabels);
            using Tensor hitCount = hits.sum();
            correct = hitCount.item<long>();
        }
        return (lossSum, correct);
    }
}
