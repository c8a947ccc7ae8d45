using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Gpt2;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Attention;

/// <summary>
/// The in-place decode kernel against plain softmax attention computed with libtorch over the same
/// keys and values, on block tables like the engine makes them: out of order, shared between
/// sequences (a cached prefix), and ending part-way into a block.
/// </summary>
public sealed class PagedDecodeAttentionTests
{
    [Theory]
    [InlineData(12, 64, 16)]   // GPT-2 124M
    [InlineData(4, 16, 16)]    // the 2-layer fixture
    [InlineData(3, 5, 4)]      // a head size off the vector width, small blocks
    public void Matches_softmax_attention_read_through_the_block_tables(int heads, int headSize, int blockSize)
    {
        var config = new Gpt2Config { LayerCount = 2, EmbeddingSize = heads * headSize, HeadCount = heads };
        const int blockCount = 48, layer = 1;
        using var cache = new PagedKvCache(config, blockCount, blockSize, ScalarType.Float32, CPU);
        var generator = manual_seed(1234);
        using (no_grad())
        {
            for (int l = 0; l < config.LayerCount; l++)
            {
                cache.Keys(l).copy_(randn(cache.Keys(l).shape, generator: generator));
                cache.Values(l).copy_(randn(cache.Values(l).shape, generator: generator));
            }
        }

        int[] keyCounts = [1, blockSize, blockSize + 1, 3 * blockSize - 2, 37];
        int blocksPerSequence = keyCounts.Max(k => (k + blockSize - 1) / blockSize);
        int[] shuffled = Enumerable.Range(0, blockCount).OrderBy(_ => Random.Shared.Next()).ToArray();
        var blockTables = new int[keyCounts.Length * blocksPerSequence];
        for (int i = 0; i < blockTables.Length; i++)
        {
            blockTables[i] = shuffled[i % blockCount];
        }
        // Sequences 2 and 3 start with the same block, as two requests sharing a cached prefix do.
        blockTables[3 * blocksPerSequence] = blockTables[2 * blocksPerSequence];

        int sequences = keyCounts.Length, width = heads * headSize;
        // Queries as the model hands them over: a third of each (B, 3C) row of the fused projection.
        using Tensor fused = randn([sequences, 3 * width], generator: generator);                      // (B, 3C)
        using Tensor queries = fused.narrow(1, 0, width).view(sequences, heads, headSize);              // (B, nh, hs)
        var group = new AttentionGroup
        {
            FirstToken = 0, SequenceCount = sequences, QueryLength = 1, KeyLength = blocksPerSequence * blockSize,
            DecodeContexts = new DecodeContexts(keyCounts, blockTables, blocksPerSequence),
        };

        using Tensor actual = PagedDecodeAttention.Run(queries, cache, layer, group);                  // (B, C)

        Assert.Equal([sequences, width], actual.shape);
        for (int s = 0; s < sequences; s++)
        {
            long[] slots = Enumerable.Range(0, keyCounts[s])
                .Select(t => (long)blockTables[s * blocksPerSequence + t / blockSize] * blockSize + t % blockSize).ToArray();
            using Tensor slotIds = tensor(slots);
            using Tensor keys = cache.Keys(layer).index_select(0, slotIds).transpose(0, 1);               // (nh, T, hs)
            using Tensor values = cache.Values(layer).index_select(0, slotIds).transpose(0, 1);           // (nh, T, hs)
            using Tensor query = queries[s].unsqueeze(1);                                                // (nh, 1, hs)
            using Tensor scores = query.matmul(keys.transpose(1, 2)).div(Math.Sqrt(headSize));           // (nh, 1, T)
            using Tensor expected = scores.softmax(-1).matmul(values).reshape(width);                     // (C)
            using Tensor row = actual[s];
            float difference = row.sub(expected).abs().max().item<float>();
            Assert.True(difference < 1e-5f, $"sequence {s} ({keyCounts[s]} keys) differs by {difference}");
        }
    }

    [Fact]
    public void Only_float32_caches_in_host_memory_are_read_in_place()
    {
        var config = new Gpt2Config { LayerCount = 1, EmbeddingSize = 8, HeadCount = 2 };
        using var float32 = new PagedKvCache(config, 2, 4, ScalarType.Float32, CPU);
        using var bfloat16 = new PagedKvCache(config, 2, 4, ScalarType.BFloat16, CPU);

        Assert.True(PagedDecodeAttention.Supports(float32));
        Assert.False(PagedDecodeAttention.Supports(bfloat16));
    }
}
