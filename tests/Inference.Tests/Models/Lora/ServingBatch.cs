using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Lora;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Lora;

/// <summary>
/// Runs prompts through the serving forward as one flattened batch, as the engine does for
/// prompts computed from their first token: each sequence its own attention group, keys and values
/// through a fresh paged cache.
/// </summary>
internal static class ServingBatch
{
    private const int BlockSize = 16;

    /// <summary>Logits (T_i, V) of every token of every prompt.</summary>
    /// <param name="route">Given each prompt's (first row, row count) in the batch, the adapters to apply; null for none.</param>
    public static List<Tensor> Logits(Gpt2Model model, IReadOnlyList<long[]> prompts,
        Func<IReadOnlyList<(int FirstRow, int RowCount)>, AdapterRouting?> route)
    {
        int blocksPerPrompt = prompts.Max(p => (p.Length + BlockSize - 1) / BlockSize);
        using var cache = new PagedKvCache(model.Config, blocksPerPrompt * prompts.Count, BlockSize, model.Dtype, model.Device);
        using var inference = inference_mode();

        var ids = new List<long>();
        var positions = new List<long>();
        var slots = new List<long>();
        var groups = new List<AttentionGroup>();
        var spans = new List<(int FirstRow, int RowCount)>();
        for (int s = 0; s < prompts.Count; s++)
        {
            long[] prompt = prompts[s];
            spans.Add((ids.Count, prompt.Length));
            groups.Add(new AttentionGroup
            {
                FirstToken = ids.Count,
                SequenceCount = 1,
                QueryLength = prompt.Length,
                KeyLength = blocksPerPrompt * BlockSize,
                StartsAtFirstToken = true,
            });
            for (int t = 0; t < prompt.Length; t++)
            {
                ids.Add(prompt[t]);
                positions.Add(t);
                slots.Add((long)s * blocksPerPrompt * BlockSize + t);
            }
        }
        using var metadata = new AttentionMetadata { SlotMapping = tensor(slots.ToArray(), ScalarType.Int64), Groups = groups };
        using Tensor tokenIds = tensor(ids.ToArray(), ScalarType.Int64);                 // (N)
        using Tensor tokenPositions = tensor(positions.ToArray(), ScalarType.Int64);     // (N)
        using AdapterRouting? routing = route(spans);
        using Tensor hidden = model.Forward(tokenIds, tokenPositions, new PagedAttention(metadata, cache), routing); // (N, C)
        using Tensor logits = model.Logits(hidden);                                     // (N, V)
        return spans.Select(span => logits.narrow(0, span.FirstRow, span.RowCount).clone()).ToList();
    }

    /// <summary>Rows [first, first + count) as an int64 index tensor.</summary>
    public static Tensor Rows(int first, int count) => arange(first, first + count, ScalarType.Int64);
}
