using LlmServer.Inference.Models.Attention;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Attention;

/// <summary>
/// A prompt's causal attention on the host (<see cref="CausalPromptAttention"/>, MKL's GEMMs a block
/// of queries at a time) gives what torch's SDPA gives: prompts shorter than a block, a block and one
/// more token, several blocks; one key/value head per query head, per two, and one for all; rows
/// read at the stride of a fused qkv projection.
/// </summary>
public sealed class CausalPromptAttentionTests
{
    private const int Heads = 4, HeadSize = 16;

    [Theory]
    [InlineData(1, Heads)]
    [InlineData(7, Heads)]
    [InlineData(64, Heads)]
    [InlineData(65, 2)]
    [InlineData(200, 1)]
    public void Matches_sdpa_with_a_causal_mask(int tokens, int kvHeads)
    {
        using var scope = NewDisposeScope();
        using var inference = inference_mode();
        int queryWidth = Heads * HeadSize, kvWidth = kvHeads * HeadSize;
        Tensor fused = randn([tokens, queryWidth + 2 * kvWidth], generator: manual_seed(tokens * 10 + kvHeads)) * 2f; // (T, q | k | v)
        Tensor queries = fused.narrow(1, 0, queryWidth).view(tokens, Heads, HeadSize);                    // (T, nh, hs)
        Tensor keys = fused.narrow(1, queryWidth, kvWidth).view(tokens, kvHeads, HeadSize);               // (T, n_kv, hs)
        Tensor values = fused.narrow(1, queryWidth + kvWidth, kvWidth).view(tokens, kvHeads, HeadSize);   // (T, n_kv, hs)
        Assert.True(CausalPromptAttention.Supports(queries, keys, values));

        Tensor actual = CausalPromptAttention.Run(queries, keys, values);                                 // (T, nh * hs)

        Tensor q = queries.transpose(0, 1).unsqueeze(0);                                                  // (1, nh, T, hs)
        Tensor k = keys.repeat_interleave(Heads / kvHeads, dim: 1).transpose(0, 1).unsqueeze(0);          // (1, nh, T, hs)
        Tensor v = values.repeat_interleave(Heads / kvHeads, dim: 1).transpose(0, 1).unsqueeze(0);        // (1, nh, T, hs)
        Tensor expected = nn.functional.scaled_dot_product_attention(q, k, v, is_casual: true)
            .squeeze(0).transpose(0, 1).reshape(tokens, queryWidth);                                      // (T, nh * hs)
        Assert.Equal(expected.shape, actual.shape);
        float difference = actual.sub(expected).abs().max().item<float>();
        Assert.True(difference < 1e-5f, $"differs from SDPA by {difference}");
    }

    [Fact]
    public void Rows_it_cannot_read_in_place_are_left_to_sdpa()
    {
        using var scope = NewDisposeScope();
        Tensor rows = randn(5, Heads, HeadSize);
        Assert.False(CausalPromptAttention.Supports(rows.transpose(1, 2), rows, rows));                  // head elements not contiguous
        Assert.False(CausalPromptAttention.Supports(rows.to(ScalarType.Float64), rows, rows));
        Assert.False(CausalPromptAttention.Supports(rows, randn(5, 3, HeadSize), randn(5, 3, HeadSize))); // 4 heads over 3
    }
}
