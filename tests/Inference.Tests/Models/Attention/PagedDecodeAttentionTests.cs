using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Gpt2;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Attention;

/// <summary>
/// The in-place decode kernel against plain softmax attention computed with libtorch over the same
/// keys and values, on block tables like the engine makes them: out of order, shared between
/// sequences (a cached prefix), and ending part-way into a block; bfloat16 caches against float32
/// ones holding the same values, and batches against their sequences one at a time.
/// </summary>
public sealed class PagedDecodeAttentionTests
{
    [Theory]
    [InlineData(12, 64, 16)]   // GPT-2 124M
    [InlineData(4, 16, 16)]    // the 2-layer fixture
    [InlineData(3, 5, 4)]      // a head size off the vector width, small blocks
    [InlineData(4, 8, 6)]      // blocks that are not a multiple of the four rows read together
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

        // Several sequences, which the threads take whole, then one long one, whose parts they split.
        int[][] keyCountSets = [[1, blockSize, blockSize + 1, 3 * blockSize - 2, 37], [150]];
        foreach (int[] keyCounts in keyCountSets)
        {
            int blocksPerSequence = keyCounts.Max(k => (k + blockSize - 1) / blockSize);
            int[] shuffled = Enumerable.Range(0, blockCount).OrderBy(_ => Random.Shared.Next()).ToArray();
            var blockTables = new int[keyCounts.Length * blocksPerSequence];
            for (int i = 0; i < blockTables.Length; i++)
            {
                blockTables[i] = shuffled[i % blockCount];
            }
            if (keyCounts.Length > 3)
            {
                // Sequences 2 and 3 start with the same block, as two requests sharing a cached prefix do.
                blockTables[3 * blocksPerSequence] = blockTables[2 * blocksPerSequence];
            }

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
    }

    [Fact]
    public void Float32_and_bfloat16_caches_in_host_memory_are_read_in_place()
    {
        var config = new Gpt2Config { LayerCount = 1, EmbeddingSize = 8, HeadCount = 2 };
        using var float32 = new PagedKvCache(config, 2, 4, ScalarType.Float32, CPU);
        using var bfloat16 = new PagedKvCache(config, 2, 4, ScalarType.BFloat16, CPU);
        using var float16 = new PagedKvCache(config, 2, 4, ScalarType.Float16, CPU);

        Assert.True(PagedDecodeAttention.Supports(float32));
        Assert.True(PagedDecodeAttention.Supports(bfloat16));
        Assert.False(PagedDecodeAttention.Supports(float16));
    }

    // (query heads, KV heads, head size, block size): without and with grouped-query attention, and a
    // head size off the vector width (the scalar tails of the bfloat16 reads).
    public static TheoryData<int, int, int, int> CacheShapes => new()
    {
        { 4, 4, 16, 16 },
        { 8, 2, 16, 16 },
        { 12, 4, 64, 16 },
        { 6, 3, 5, 4 },
        { 4, 2, 8, 6 },
    };

    // One sequence whose context spans several blocks, then several of different lengths.
    private static readonly int[][] KeyCountSets = [[70], [1, 16, 17, 70, 37]];

    [Theory]
    [MemberData(nameof(CacheShapes))]
    public void A_bfloat16_cache_reads_as_a_float32_cache_of_the_same_rounded_values(int heads, int kvHeads, int headSize, int blockSize)
    {
        var shape = new CacheShape(2, kvHeads, headSize);
        const int blockCount = 96, layer = 1;
        using var bfloat16 = new PagedKvCache(shape, blockCount, blockSize, ScalarType.BFloat16, CPU);
        using var float32 = new PagedKvCache(shape, blockCount, blockSize, ScalarType.Float32, CPU);
        var generator = manual_seed(heads * 100 + kvHeads);
        FillWithTheSameValues(bfloat16, float32, generator);

        foreach (int[] keyCounts in KeyCountSets)
        {
            var group = Group(keyCounts, blockSize, blockCount, out _);
            using Tensor queries = randn([keyCounts.Length, heads, headSize], generator: generator);  // (B, nh, hs)

            using Tensor fromBfloat16 = PagedDecodeAttention.Run(queries, bfloat16, layer, group);     // (B, C)
            using Tensor fromFloat32 = PagedDecodeAttention.Run(queries, float32, layer, group);       // (B, C)

            // Equal values, so only float32 summation order differs (the bfloat16 reads sum even and
            // odd elements apart): measured at most 3e-7 of the largest output, where
            // a misread element would move it by the order of the output itself.
            using Tensor difference = fromBfloat16.sub(fromFloat32).abs().max();
            using Tensor largest = fromFloat32.abs().max();
            double relative = difference.item<float>() / (double)largest.item<float>();
            Assert.True(relative < 1e-5, $"{keyCounts.Length} sequences: differs by {relative:E2} of the largest output");
        }
    }

    [Theory]
    [InlineData(ScalarType.Float32, 4, 4, 16, 16)]
    [InlineData(ScalarType.BFloat16, 4, 4, 16, 16)]
    [InlineData(ScalarType.Float32, 8, 2, 16, 4)]
    [InlineData(ScalarType.BFloat16, 8, 2, 16, 4)]
    public void Sequences_computed_together_match_each_computed_alone(ScalarType dtype, int heads, int kvHeads, int headSize, int blockSize)
    {
        // Together the threads take whole sequences; alone they split one sequence into parts and
        // combine the parts' results. Only float32 rounding may tell the two apart.
        var shape = new CacheShape(1, kvHeads, headSize);
        const int blockCount = 128;
        using var cache = new PagedKvCache(shape, blockCount, blockSize, dtype, CPU);
        var generator = manual_seed(77);
        using (no_grad())
        {
            cache.Keys(0).copy_(randn(cache.Keys(0).shape, generator: generator));
            cache.Values(0).copy_(randn(cache.Values(0).shape, generator: generator));
        }
        int[] keyCounts = [3, 70, 1, 45, 16, 33, 9];
        var group = Group(keyCounts, blockSize, blockCount, out int blocksPerSequence);
        using Tensor queries = randn([keyCounts.Length, heads, headSize], generator: generator);      // (B, nh, hs)

        using Tensor together = PagedDecodeAttention.Run(queries, cache, 0, group);                    // (B, C)

        for (int s = 0; s < keyCounts.Length; s++)
        {
            var alone = new AttentionGroup
            {
                FirstToken = 0, SequenceCount = 1, QueryLength = 1, KeyLength = group.KeyLength,
                DecodeContexts = new DecodeContexts([keyCounts[s]],
                    group.DecodeContexts!.BlockTables.AsSpan(s * blocksPerSequence, blocksPerSequence).ToArray(), blocksPerSequence),
            };
            using Tensor query = queries.narrow(0, s, 1);                                               // (1, nh, hs)
            using Tensor single = PagedDecodeAttention.Run(query, cache, 0, alone);                     // (1, C)
            using Tensor row = together.narrow(0, s, 1);
            using Tensor difference = single.sub(row).abs().max();
            using Tensor largest = row.abs().max();
            double relative = difference.item<float>() / (double)largest.item<float>();
            Assert.True(relative < 1e-5, $"sequence {s} ({keyCounts[s]} keys) differs by {relative:E2} of its largest output when computed alone");
        }
    }

    /// <summary>Random values rounded to bfloat16 in one cache and the same values widened to float32 in the other.</summary>
    private static void FillWithTheSameValues(PagedKvCache bfloat16, PagedKvCache float32, TorchSharp.torch.Generator generator)
    {
        using (no_grad())
        {
            for (int l = 0; l < 2; l++)
            {
                bfloat16.Keys(l).copy_(randn(bfloat16.Keys(l).shape, generator: generator));
                bfloat16.Values(l).copy_(randn(bfloat16.Values(l).shape, generator: generator));
                float32.Keys(l).copy_(bfloat16.Keys(l));
                float32.Values(l).copy_(bfloat16.Values(l));
            }
        }
    }

    /// <summary>A decode group over distinct, shuffled blocks, as many per sequence as the longest needs.</summary>
    private static AttentionGroup Group(int[] keyCounts, int blockSize, int blockCount, out int blocksPerSequence)
    {
        int perSequence = keyCounts.Max(k => (k + blockSize - 1) / blockSize);
        Assert.True(perSequence * keyCounts.Length <= blockCount, "the test needs more blocks");
        int[] shuffled = Enumerable.Range(0, blockCount).OrderBy(_ => Random.Shared.Next()).ToArray();
        int[] blockTables = shuffled.Take(perSequence * keyCounts.Length).ToArray();
        blocksPerSequence = perSequence;
        return new AttentionGroup
        {
            FirstToken = 0, SequenceCount = keyCounts.Length, QueryLength = 1, KeyLength = perSequence * blockSize,
            DecodeContexts = new DecodeContexts(keyCounts, blockTables, perSequence),
        };
    }

    private sealed record CacheShape(int LayerCount, int KvHeadCount, int HeadSize) : IKvCacheShape;
}
