using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Llama;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Llama;

/// <summary>
/// The serving forward of a Llama-family model: a prompt through <see cref="PagedAttention"/> from
/// its first token, then one token a step over the paged cache (which holds only the KV heads),
/// each at its own position, reproduces the reference's greedy tokens, logprobs and top 5.
/// </summary>
public class LlamaServingForwardTests
{
    private const double LogprobTolerance = 2e-3;
    private const int BlockSize = 16;

    [Theory]
    [InlineData("llama3-random-2l-64d", true)]     // decodes read in place by PagedDecodeAttention
    [InlineData("llama3-random-2l-64d", false)]    // decodes gathered from whole blocks
    [InlineData("qwen3-random-2l-64d", true)]
    [InlineData("qwen3-random-2l-64d", false)]
    public void Prefill_then_decode_over_the_paged_cache_matches_the_reference(string model, bool decodeInPlace)
    {
        using LlamaModel llama = LlamaCheckpointLoader.Load(TestFixtures.ModelDirectory(model), ScalarType.Float32, CPU);
        llama.PrepareForServing();
        using var inference = inference_mode();
        foreach (ReferenceCase reference in ReferenceCase.Load(model))
        {
            int total = reference.PromptIds.Length + reference.GreedyIds.Length;
            int blocks = (total + BlockSize - 1) / BlockSize;
            // Blocks handed out from the top down, so the table is not in address order.
            int[] table = Enumerable.Range(0, blocks).Select(b => blocks - 1 - b).ToArray();
            using var cache = new PagedKvCache(llama.Config, blocks, BlockSize, ScalarType.Float32, CPU);
            Assert.Equal(llama.Config.KvHeadCount, (int)cache.Keys(0).shape[1]);

            var ids = reference.PromptIds.ToList();
            var prefill = new AttentionGroup
            {
                FirstToken = 0, SequenceCount = 1, QueryLength = ids.Count, KeyLength = ids.Count, StartsAtFirstToken = true,
            };
            int chosen = Step(llama, cache, ids, firstPosition: 0, table, prefill, reference, step: 0);
            for (int step = 1; step < reference.GreedyIds.Length; step++)
            {
                ids.Add(chosen);
                int position = ids.Count - 1;
                AttentionGroup decode = decodeInPlace
                    ? new AttentionGroup
                    {
                        FirstToken = 0, SequenceCount = 1, QueryLength = 1, KeyLength = blocks * BlockSize,
                        DecodeContexts = new DecodeContexts([position + 1], table, blocks),
                    }
                    : new AttentionGroup
                    {
                        FirstToken = 0, SequenceCount = 1, QueryLength = 1, KeyLength = blocks * BlockSize,
                        KeyBlocks = tensor(table.Select(b => (long)b).ToArray()),
                        Mask = tensor(Enumerable.Range(0, blocks * BlockSize).Select(k => k <= position).ToArray())
                            .view(1, 1, 1, blocks * BlockSize),                                    // (B, 1, Tq, Tk)
                    };
                chosen = Step(llama, cache, [chosen], position, table, decode, reference, step);
            }
        }
    }

    /// <summary>One serving step; checks the last token's distribution against the reference and returns the greedy id.</summary>
    private static int Step(LlamaModel llama, PagedKvCache cache, IReadOnlyList<int> stepIds, int firstPosition, int[] table,
        AttentionGroup group, ReferenceCase reference, int step)
    {
        using var scope = NewDisposeScope();
        long[] positions = Enumerable.Range(firstPosition, stepIds.Count).Select(p => (long)p).ToArray();
        using var metadata = new AttentionMetadata
        {
            SlotMapping = tensor(positions.Select(p => (long)table[p / BlockSize] * BlockSize + p % BlockSize).ToArray()),
            Groups = [group],
        };
        Tensor hidden = llama.Forward(tensor(stepIds.Select(i => (long)i).ToArray()), tensor(positions),
            new PagedAttention(metadata, cache));                                                  // (N, C)
        Tensor logits = llama.Logits(hidden.narrow(0, stepIds.Count - 1, 1));                       // (1, V)
        Tensor logprobs = logits[0].to(ScalarType.Float64).log_softmax(0);                         // (V)
        (Tensor top5Values, Tensor top5Ids) = logprobs.topk(5);
        int[] top5 = top5Ids.data<long>().Select(i => (int)i).ToArray();

        Assert.Equal(reference.GreedyIds[step], top5[0]);
        Assert.Equal(reference.GreedyTop5Ids[step], top5);
        Assert.InRange(top5Values[0].item<double>(), reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
        return top5[0];
    }
}
