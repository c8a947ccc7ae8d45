using LlmServer.Training.Data;
using static TorchSharp.torch;

namespace LlmServer.Training.Batching;

/// <summary>
/// One forward pass worth of examples as tensors: input ids right-padded to the longest example,
/// and per position the token the logits there must predict, or <see cref="IgnoredLabel"/>.
/// </summary>
/// <remarks>
/// Right padding needs no attention mask: attention is causal, so a real token only ever attends to
/// positions before it, which are never padding; the padded positions compute garbage that no label
/// reads. Padding to this pass's longest example rather than the whole batch's changes nothing
/// for the same reason.
/// </remarks>
internal sealed class LabeledBatch : IDisposable
{
    /// <summary>cross_entropy's default ignore_index (as in PyTorch and transformers).</summary>
    public const long IgnoredLabel = -100;

    // Any valid id would do: padded positions are neither attended to nor predicted.
    private const long PaddingId = 0;

    private LabeledBatch(Tensor inputIds, Tensor labels, int trainedTokenCount)
    {
        InputIds = inputIds;
        Labels = labels;
        TrainedTokenCount = trainedTokenCount;
    }

    /// <summary>(B, T) int64.</summary>
    public Tensor InputIds { get; }

    /// <summary>(B, T) int64: labels[b, t] = ids[b, t + 1] where that token is trained, else <see cref="IgnoredLabel"/>.</summary>
    public Tensor Labels { get; }

    public int TrainedTokenCount { get; }

    public static LabeledBatch Create(IReadOnlyList<TrainingExample> examples, Device device)
    {
        int rows = examples.Count;
        int length = examples.Max(e => e.Length);
        long[] ids = new long[rows * length];
        long[] labels = new long[rows * length];
        Array.Fill(ids, PaddingId);
        Array.Fill(labels, IgnoredLabel);
        int trained = 0;
        for (int b = 0; b < rows; b++)
        {
            TrainingExample example = examples[b];
            for (int t = 0; t < example.Length; t++)
            {
                ids[b * length + t] = example.TokenIds[t];
                // The logits at t predict token t + 1: the shift lives in the labels, so the logits need no slicing.
                if (t + 1 < example.Length && example.Trained[t + 1])
                {
                    labels[b * length + t] = example.TokenIds[t + 1];
                    trained++;
                }
            }
        }
        return new LabeledBatch(
            tensor(ids, [rows, length], ScalarType.Int64, device),                       // (B, T)
            tensor(labels, [rows, length], ScalarType.Int64, device),                    // (B, T)
            trained);
    }

    public void Dispose()
    {
        InputIds.Dispose();
        Labels.Dispose();
    }
}
