using LlmServer.Inference.Models.Attention;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Attention;

/// <summary>
/// One serving step through <see cref="PagedAttention"/>, with every kind of group the runner makes
/// (single-token decodes, a prompt chunk after a cached start, a prompt from its first token), gives
/// what plain causal attention over each whole sequence gives, and leaves the step's keys and values
/// in the cache for the next step; under grouped-query attention too, where the cache holds fewer
/// key/value heads than there are query heads.
/// </summary>
public sealed class PagedAttentionTests
{
    private const int Heads = 4, HeadSize = 8, BlockSize = 4, BlockCount = 16, Layer = 1;

    [Theory]
    [InlineData(true, Heads)]    // decodes read in place by PagedDecodeAttention
    [InlineData(false, Heads)]   // decodes gathered, as for a cache the in-place kernel cannot read
    [InlineData(true, 2)]        // grouped-query attention: two query heads per key/value head
    [InlineData(false, 2)]
    [InlineData(true, 1)]        // multi-query attention: one key/value head for all
    [InlineData(false, 1)]
    public void A_mixed_step_matches_causal_attention_over_each_whole_sequence(bool decodeInPlace, int kvHeads)
    {
        using var cache = new PagedKvCache(new CacheShape(LayerCount: 2, KvHeadCount: kvHeads, HeadSize: HeadSize),
            BlockCount, BlockSize, ScalarType.Float32, CPU);
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        var generator = manual_seed(42);
        // Context lengths and the tokens each computes this step, decodes first as the runner orders them.
        (int Length, int New)[] sequences = [(5, 1), (10, 1), (9, 3), (7, 7)];
        // Blocks handed out from the top down, so no table is in address order.
        var tables = new List<int[]>();
        int nextBlock = BlockCount;
        foreach ((int length, _) in sequences)
        {
            int blocks = (length + BlockSize - 1) / BlockSize;
            tables.Add(Enumerable.Range(0, blocks).Select(_ => --nextBlock).ToArray());
        }
        List<(Tensor Q, Tensor K, Tensor V)> whole = sequences
            .Select(s => (randn([s.Length, Heads, HeadSize], generator: generator),       // (T, nh, hs)
                          randn([s.Length, kvHeads, HeadSize], generator: generator),     // (T, n_kv, hs)
                          randn([s.Length, kvHeads, HeadSize], generator: generator)))    // (T, n_kv, hs)
            .ToList();

        // What earlier steps left in the cache: every token before this step's.
        var stepSlots = new List<long>();
        for (int s = 0; s < sequences.Length; s++)
        {
            int cached = sequences[s].Length - sequences[s].New;
            using Tensor cachedSlots = tensor(Enumerable.Range(0, cached).Select(p => Slot(tables[s], p)).ToArray());
            cache.Keys(Layer).index_copy_(0, cachedSlots, whole[s].K.narrow(0, 0, cached));
            cache.Values(Layer).index_copy_(0, cachedSlots, whole[s].V.narrow(0, 0, cached));
            stepSlots.AddRange(Enumerable.Range(cached, sequences[s].New).Select(p => Slot(tables[s], p)));
        }

        using Tensor queries = StepRows(whole.Select(w => w.Q).ToList(), sequences);     // (N, nh, hs)
        using Tensor keys = StepRows(whole.Select(w => w.K).ToList(), sequences);        // (N, n_kv, hs)
        using Tensor values = StepRows(whole.Select(w => w.V).ToList(), sequences);      // (N, n_kv, hs)
        using var metadata = new AttentionMetadata
        {
            SlotMapping = tensor(stepSlots.ToArray()),
            Groups =
            [
                decodeInPlace
                    ? InPlaceDecodes(firstToken: 0, [(5, tables[0]), (10, tables[1])])
                    : Gathered(firstToken: 0, queryLength: 1, [(4, tables[0]), (9, tables[1])]),
                Gathered(firstToken: 2, queryLength: 3, [(6, tables[2])]),
                new AttentionGroup { FirstToken = 5, SequenceCount = 1, QueryLength = 7, KeyLength = 7, StartsAtFirstToken = true },
            ],
        };

        using Tensor actual = new PagedAttention(metadata, cache).Attend(Layer, queries, keys, values); // (N, nh * hs)

        var expectedRows = new List<Tensor>();
        for (int s = 0; s < sequences.Length; s++)
        {
            (Tensor q, Tensor k, Tensor v) = whole[s];
            // Query head h reads key/value head h / (nh / n_kv): each KV head written out for its group.
            using Tensor kPerQueryHead = k.repeat_interleave(Heads / kvHeads, dim: 1);   // (T, nh, hs)
            using Tensor vPerQueryHead = v.repeat_interleave(Heads / kvHeads, dim: 1);   // (T, nh, hs)
            using Tensor attended = CausalAttention.Instance.Attend(Layer, q.unsqueeze(0), kPerQueryHead.unsqueeze(0), vPerQueryHead.unsqueeze(0)); // (1, T, nh * hs)
            expectedRows.Add(attended[0].narrow(0, sequences[s].Length - sequences[s].New, sequences[s].New).clone()); // (new, nh * hs)
        }
        using Tensor expected = cat(expectedRows, 0);                                    // (N, nh * hs)
        Assert.Equal(expected.shape, actual.shape);
        float difference = actual.sub(expected).abs().max().item<float>();
        Assert.True(difference < 1e-5f, $"differs from causal attention by {difference}");

        using Tensor slots = tensor(stepSlots.ToArray());
        Assert.True(cache.Keys(Layer).index_select(0, slots).equal(keys).all().item<bool>());
        Assert.True(cache.Values(Layer).index_select(0, slots).equal(values).all().item<bool>());
    }

    private static long Slot(int[] table, int position) => (long)table[position / BlockSize] * BlockSize + position % BlockSize;

    /// <summary>The rows of this step's tokens of every sequence, in order: (N, nh, hs).</summary>
    private static Tensor StepRows(List<Tensor> perSequence, (int Length, int New)[] sequences) =>
        cat(perSequence.Select((t, s) => t.narrow(0, sequences[s].Length - sequences[s].New, sequences[s].New)).ToList(), 0);

    /// <param name="contexts">Per sequence: its context length, this step's token included, and its blocks.</param>
    private static AttentionGroup InPlaceDecodes(int firstToken, (int KeyCount, int[] Blocks)[] contexts)
    {
        int blocksPerSequence = contexts.Max(c => c.Blocks.Length);
        var blockTables = new int[contexts.Length * blocksPerSequence];
        for (int s = 0; s < contexts.Length; s++)
        {
            contexts[s].Blocks.CopyTo(blockTables, s * blocksPerSequence);
        }
        return new AttentionGroup
        {
            FirstToken = firstToken, SequenceCount = contexts.Length, QueryLength = 1, KeyLength = blocksPerSequence * BlockSize,
            DecodeContexts = new DecodeContexts(contexts.Select(c => c.KeyCount).ToArray(), blockTables, blocksPerSequence),
        };
    }

    /// <param name="sequences">Per sequence: the position of its first query this step, and its blocks.</param>
    private static AttentionGroup Gathered(int firstToken, int queryLength, (int ContextStart, int[] Blocks)[] sequences)
    {
        int b = sequences.Length, blocksPerSequence = sequences.Max(s => s.Blocks.Length), keyLength = blocksPerSequence * BlockSize;
        var keyBlocks = new long[b * blocksPerSequence];
        var mask = new bool[b * queryLength * keyLength];
        for (int s = 0; s < b; s++)
        {
            for (int block = 0; block < sequences[s].Blocks.Length; block++)
            {
                keyBlocks[s * blocksPerSequence + block] = sequences[s].Blocks[block];
            }
            for (int q = 0; q < queryLength; q++)
            {
                Array.Fill(mask, true, (s * queryLength + q) * keyLength, sequences[s].ContextStart + q + 1);
            }
        }
        return new AttentionGroup
        {
            FirstToken = firstToken, SequenceCount = b, QueryLength = queryLength, KeyLength = keyLength,
            KeyBlocks = tensor(keyBlocks),
            Mask = tensor(mask).view(b, 1, queryLength, keyLength),                      // (B, 1, Tq, Tk)
        };
    }

    private sealed record CacheShape(int LayerCount, int KvHeadCount, int HeadSize) : IKvCacheShape;
}
