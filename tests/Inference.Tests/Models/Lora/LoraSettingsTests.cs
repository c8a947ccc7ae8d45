using LlmServer.Inference.Models.Lora;

namespace LlmServer.Inference.Tests.Models.Lora;

public sealed class LoraSettingsTests
{
    [Fact]
    public void A_target_matches_every_module_whose_path_ends_with_it()
    {
        Assert.Equal(["h.0.attn.c_proj", "h.0.mlp.c_proj", "h.1.attn.c_proj", "h.1.mlp.c_proj"],
            new LoraSettings(4, 8, ["c_proj"]).TargetedPaths(layerCount: 2));
        Assert.Equal(["h.0.attn.c_proj", "h.1.attn.c_proj"], new LoraSettings(4, 8, ["attn.c_proj"]).TargetedPaths(2));
        Assert.Equal(["h.1.mlp.c_fc"], new LoraSettings(4, 8, ["h.1.mlp.c_fc"]).TargetedPaths(2));
        Assert.Equal(8, new LoraSettings(4, 8, ["c_attn", "c_proj", "c_fc"]).TargetedPaths(2).Count);
        // A suffix must end at a dot: "proj" is not "c_proj".
        Assert.Throws<ArgumentException>(() => new LoraSettings(4, 8, ["proj"]).TargetedPaths(2));
    }

    [Fact]
    public void Scale_is_alpha_over_rank_or_over_its_root_with_rslora()
    {
        Assert.Equal(4.0, new LoraSettings(4, 16, ["c_attn"]).Scale);
        Assert.Equal(8.0, new LoraSettings(4, 16, ["c_attn"], UseRsLora: true).Scale);
    }

    [Theory]
    [InlineData(0, 8.0, "c_attn", "rank must be at least 1")]
    [InlineData(4, 0.0, "c_attn", "alpha must be a positive number")]
    [InlineData(4, double.NaN, "c_attn", "alpha must be a positive number")]
    [InlineData(4, 8.0, "q_proj", "'q_proj' matches no layer")]
    [InlineData(4, 8.0, "h.2.attn.c_attn", "'h.2.attn.c_attn' matches no layer of this 2-layer GPT-2")]
    public void Unusable_settings_are_refused_with_the_reason(int rank, double alpha, string target, string reason)
    {
        var error = Assert.Throws<ArgumentException>(() => new LoraSettings(rank, alpha, [target]).TargetedPaths(2));
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void No_target_at_all_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new LoraSettings(4, 8, []).TargetedPaths(2));
        Assert.Contains("at least one target module", error.Message);
    }
}
