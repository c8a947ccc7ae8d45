using LlmServer.Inference.Models.Attention;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Attention;

/// <summary>
/// <see cref="PagedKvCache.Write"/> on the host stores exactly what torch's cast and <c>index_copy_</c>
/// store: the same bits (any NaN for a NaN), bfloat16's rounding and infinities included, from rows read at a stride
/// (keys and values are views into the fused qkv projection).
/// </summary>
public sealed class PagedKvCacheTests
{
    private const int KvHeads = 3, HeadSize = 8, BlockSize = 4, BlockCount = 6;

    [Theory]
    [InlineData(ScalarType.Float32)]
    [InlineData(ScalarType.BFloat16)]
    public void Writes_the_bits_torchs_cast_and_index_copy_write(ScalarType dtype)
    {
        using var written = new PagedKvCache(new CacheShape(LayerCount: 2, KvHeadCount: KvHeads, HeadSize: HeadSize), BlockCount, BlockSize, dtype, CPU);
        using var expected = new PagedKvCache(new CacheShape(LayerCount: 2, KvHeadCount: KvHeads, HeadSize: HeadSize), BlockCount, BlockSize, dtype, CPU);
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        const int tokens = 5, width = KvHeads * HeadSize;
        Tensor fused = randn([tokens, 3 * width], generator: manual_seed(7)) * 100;            // (N, 3 * n_kv * hs), as qkv
        float[] awkward =
        [
            float.NaN, float.PositiveInfinity, float.NegativeInfinity, -0f, float.Epsilon, float.MaxValue,
            BitConverter.UInt32BitsToSingle(0x3F808000), // a tie between two bfloat16s: rounds to the even one below
            BitConverter.UInt32BitsToSingle(0x3F818000), // a tie: rounds to the even one above
            BitConverter.UInt32BitsToSingle(0x3F808001), // just past a tie: rounds up
        ];
        fused[1, TensorIndex.Slice(width, width + awkward.Length)] = tensor(awkward);
        fused[3, TensorIndex.Slice(2 * width + 15, 2 * width + 15 + awkward.Length)] = tensor(awkward); // most in the tail past 16
        Tensor keys = fused.narrow(1, width, width).view(tokens, KvHeads, HeadSize);           // (N, n_kv, hs), row stride 3 * width
        Tensor values = fused.narrow(1, 2 * width, width).view(tokens, KvHeads, HeadSize);     // (N, n_kv, hs)
        Tensor slots = tensor(new long[] { 9, 2, 23, 0, 14 });

        written.Write(1, slots, keys, values);
        expected.Keys(1).index_copy_(0, slots, keys.to(dtype));
        expected.Values(1).index_copy_(0, slots, values.to(dtype));

        Assert.Equal(Bits(expected.Keys(1)), Bits(written.Keys(1)));
        Assert.Equal(Bits(expected.Values(1)), Bits(written.Values(1)));
        Assert.Equal(Bits(expected.Keys(0)), Bits(written.Keys(0)));                           // other layers untouched
        Assert.Contains(Bits(expected.Keys(1)), bits => bits == 0x7FC00000u);                     // the NaN arrived
    }

    [Fact]
    public void A_slot_outside_the_cache_is_refused_before_anything_is_written()
    {
        using var cache = new PagedKvCache(new CacheShape(LayerCount: 1, KvHeadCount: KvHeads, HeadSize: HeadSize), BlockCount, BlockSize, ScalarType.BFloat16, CPU);
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        Tensor rows = ones([2, KvHeads, HeadSize]);
        Tensor slots = tensor(new long[] { 3, BlockCount * BlockSize });

        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Write(0, slots, rows, rows));
        Assert.All(Bits(cache.Keys(0)), bits => Assert.Equal(0u, bits));
    }

    /// <summary>
    /// Each value's bits as float32 (bfloat16 widens exactly), every NaN as one: torch's own cast gives a
    /// NaN different bits in its vector and scalar paths.
    /// </summary>
    private static uint[] Bits(Tensor cached)
    {
        using Tensor wide = cached.to(ScalarType.Float32).contiguous();
        return wide.data<float>().ToArray().Select(value => float.IsNaN(value) ? 0x7FC00000u : BitConverter.SingleToUInt32Bits(value)).ToArray();
    }

    private sealed record CacheShape(int LayerCount, int KvHeadCount, int HeadSize) : IKvCacheShape;
}
