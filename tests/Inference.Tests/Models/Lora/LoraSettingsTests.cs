using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Llama;
using LlmServer.Inference.Models.Lora;
using static TorchSharp.torch;

namespace LlmServer.Inference.Tests.Models.Lora;

public sealed class LoraSettingsTests
{
    // The fixtures' layers as their models list them: 2 blocks each.
    private static readonly AdaptableLayers Gpt2 = LayersOf("gpt2-random-2l-64d");
    private static readonly AdaptableLayers Llama = LayersOf("llama3-random-2l-64d");

    private static AdaptableLayers LayersOf(string fixture)
    {
        using ICausalLanguageModel model = ModelArchitectures.Load(TestFixtures.ModelDirectory(fixture), ScalarType.Float32, CPU);
        return model.AdaptableLayers;
    }

    [Fact]
    public void Peft_target_names_pick_the_llama_projections()
    {
        Assert.Equal(["model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj", "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"],
            new LoraSettings(4, 8, ["q_proj", "v_proj"]).TargetedPaths(Llama));
        Assert.Equal(["model.layers.1.mlp.down_proj"], new LoraSettings(4, 8, ["model.layers.1.mlp.down_proj"]).TargetedPaths(Llama));
        Assert.Equal(14, new LoraSettings(4, 8, Llama.DefaultTargetModules).TargetedPaths(Llama).Count);
        var error = Assert.Throws<ArgumentException>(() => new LoraSettings(4, 8, ["c_attn"]).TargetedPaths(Llama));
        Assert.Contains("'c_attn' matches no layer of this 2-layer LlamaForCausalLM", error.Message);
        Assert.Contains("self_attn.q_proj", error.Message);
    }

    [Fact]
    public void Each_architecture_lists_its_projections_with_their_sizes()
    {
        Assert.Equal(["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"], Gpt2.NamesInBlock);
        Assert.Equal("transformer.h.0.attn.c_attn", Gpt2.FullName("h.0.attn.c_attn"));
        Assert.True(Gpt2.TryGet("h.1.attn.c_attn", out AdaptableLayer qkv));
        Assert.Equal((64, 192), (qkv.Inputs, qkv.Outputs));

        Assert.Equal(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"],
            Llama.NamesInBlock);
        Assert.Equal("model.layers.0.self_attn.q_proj", Llama.FullName("model.layers.0.self_attn.q_proj"));
        Assert.False(Llama.FanInFanOut);
        using LlamaModel llama = (LlamaModel)ModelArchitectures.Load(TestFixtures.ModelDirectory("llama3-random-2l-64d"), ScalarType.Float32, CPU);
        LlamaConfig config = llama.Config;
        Assert.True(Llama.TryGet("model.layers.0.self_attn.k_proj", out AdaptableLayer k));
        Assert.Equal((config.HiddenSize, config.KvHeadCount * config.HeadSize), (k.Inputs, k.Outputs));
        Assert.True(Llama.TryGet("model.layers.1.mlp.down_proj", out AdaptableLayer down));
        Assert.Equal((config.IntermediateSize, config.HiddenSize), (down.Inputs, down.Outputs));
    }

    [Fact]
    public void A_target_matches_every_module_whose_path_ends_with_it()
    {
        Assert.Equal(["h.0.attn.c_proj", "h.0.mlp.c_proj", "h.1.attn.c_proj", "h.1.mlp.c_proj"],
            new LoraSettings(4, 8, ["c_proj"]).TargetedPaths(Gpt2));
        Assert.Equal(["h.0.attn.c_proj", "h.1.attn.c_proj"], new LoraSettings(4, 8, ["attn.c_proj"]).TargetedPaths(Gpt2));
        Assert.Equal(["h.1.mlp.c_fc"], new LoraSettings(4, 8, ["h.1.mlp.c_fc"]).TargetedPaths(Gpt2));
        Assert.Equal(8, new LoraSettings(4, 8, ["c_attn", "c_proj", "c_fc"]).TargetedPaths(Gpt2).Count);
        // A suffix must end at a dot: "proj" is not "c_proj".
        Assert.Throws<ArgumentException>(() => new LoraSettings(4, 8, ["proj"]).TargetedPaths(Gpt2));
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
        var error = Assert.Throws<ArgumentException>(() => new LoraSettings(rank, alpha, [target]).TargetedPaths(Gpt2));
        Assert.Contains(reason, error.Message);
    }

    [Fact]
    public void No_target_at_all_is_refused()
    {
        var error = Assert.Throws<ArgumentException>(() => new LoraSettings(4, 8, []).TargetedPaths(Gpt2));
        Assert.Contains("at least one target module", error.Message);
    }
}
