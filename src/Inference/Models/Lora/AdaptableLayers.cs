namespace LlmServer.Inference.Models.Lora;

/// <summary>One layer a LoRA adapter can adapt: its module path as the forward passes it to <see cref="AdapterRouting"/>, and its sizes.</summary>
/// <param name="ModulePath">"h.0.attn.c_attn" (GPT-2), "model.layers.0.self_attn.q_proj" (Llama family).</param>
public readonly record struct AdaptableLayer(string ModulePath, int Inputs, int Outputs);

/// <summary>
/// The layers of one model that LoRA can adapt, in model order, and how PEFT names them. Each
/// architecture describes its own (<see cref="ICausalLanguageModel.AdaptableLayers"/>), so adapters,
/// their files and the fine-tuning jobs know nothing of GPT-2 or Llama. No tensors.
/// </summary>
/// <param name="Architecture">For messages: "GPT-2", "LlamaForCausalLM", ...</param>
/// <param name="LayerCount">Decoder blocks, for messages.</param>
/// <param name="PeftNamePrefix">
/// What PEFT's full module name adds before <see cref="AdaptableLayer.ModulePath"/>: GPT2LMHeadModel
/// nests its blocks under "transformer.", while a *ForCausalLM's paths already start "model.".
/// </param>
/// <param name="FanInFanOut">The base stores these weights (in, out), as GPT-2's Conv1D: PEFT's fan_in_fan_out.</param>
/// <param name="DefaultTargetModules">What a fine-tuning job that names no target modules adapts: every projection of a block.</param>
public sealed record AdaptableLayers(
    string Architecture,
    int LayerCount,
    string PeftNamePrefix,
    bool FanInFanOut,
    IReadOnlyList<AdaptableLayer> Layers,
    IReadOnlyList<string> DefaultTargetModules)
{
    /// <summary>The module's full name inside the Hugging Face model, which PEFT's target_modules are matched against.</summary>
    public string FullName(string modulePath) => PeftNamePrefix + modulePath;

    /// <summary>The layers' names within a block, in order ("self_attn.q_proj", "mlp.down_proj"), for messages.</summary>
    public IReadOnlyList<string> NamesInBlock => Layers.Select(layer => InBlock(layer.ModulePath)).Distinct().ToList();

    public bool TryGet(string modulePath, out AdaptableLayer layer)
    {
        foreach (AdaptableLayer candidate in Layers)
        {
            if (candidate.ModulePath == modulePath)
            {
                layer = candidate;
                return true;
            }
        }
        layer = default;
        return false;
    }

    // The path after the block's index: "model.layers.3.mlp.up_proj" -> "mlp.up_proj".
    private static string InBlock(string modulePath)
    {
        string[] parts = modulePath.Split('.');
        int index = Array.FindIndex(parts, part => part.Length > 0 && part.All(char.IsAsciiDigit));
        return index < 0 ? modulePath : string.Join('.', parts[(index + 1)..]);
    }
}
