using System.Text.Json.Serialization;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// The shape of a LoRA adapter, with PEFT's meaning for each field: every targeted linear layer
/// gets y += Scale * x Aᵀ Bᵀ, A (Rank, in) and B (out, Rank). A fine-tuning job records how it
/// adapts the model in this record too, where rank 0 means a full fine-tune (every weight trains;
/// alpha and target modules do not apply). The job store keeps it as JSON: only the fields,
/// never what is computed from them, and use_rslora only when set.
/// </summary>
/// <param name="TargetModules">
/// PEFT's matching against the module's full name in the Hugging Face model: a target names every
/// module whose name ends with it at a dot boundary, so GPT-2's "c_proj" picks both attn.c_proj and
/// mlp.c_proj in every block, "attn.c_proj" only the attention one, and "h.0.attn.c_attn" a single
/// layer; Llama's "q_proj" picks model.layers.N.self_attn.q_proj in every layer.
/// </param>
/// <param name="UseRsLora">Rank-stabilised scaling, Alpha / sqrt(Rank), as PEFT's use_rslora.</param>
public sealed record LoraSettings(int Rank, double Alpha, IReadOnlyList<string> TargetModules,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool UseRsLora = false)
{
    /// <summary>PEFT's scaling: lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora.</summary>
    [JsonIgnore]
    public double Scale => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>A fine-tuning job's "no adapter": every weight of a copy of the base trains.</summary>
    [JsonIgnore]
    public bool IsFullFineTune => Rank == 0;

    /// <summary>The layers of <paramref name="model"/> this adapter covers, in model order.</summary>
    /// <exception cref="ArgumentException">Rank, alpha or a target is unusable; the message says which.</exception>
    public IReadOnlyList<AdaptableLayer> TargetedLayers(AdaptableLayers model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (Rank < 1)
        {
            throw new ArgumentException($"LoRA rank must be at least 1, got {Rank}", nameof(Rank));
        }
        if (!(Alpha > 0) || double.IsInfinity(Alpha))
        {
            throw new ArgumentException($"LoRA alpha must be a positive number, got {Alpha}", nameof(Alpha));
        }
        if (TargetModules is null || TargetModules.Count == 0)
        {
            throw new ArgumentException($"LoRA needs at least one target module ({Targets(model)})", nameof(TargetModules));
        }
        var layers = model.Layers.Where(layer => TargetModules.Any(target => Matches(model.FullName(layer.ModulePath), target))).ToList();
        foreach (string target in TargetModules)
        {
            if (!layers.Any(layer => Matches(model.FullName(layer.ModulePath), target)))
            {
                throw new ArgumentException(
                    $"LoRA target module '{target}' matches no layer of this {model.LayerCount}-layer {model.Architecture} ({Targets(model)})",
                    nameof(TargetModules));
            }
        }
        return layers;
    }

    /// <summary>The module paths this adapter covers in <paramref name="model"/>, in model order.</summary>
    /// <exception cref="ArgumentException">Rank, alpha or a target is unusable; the message says which.</exception>
    public IReadOnlyList<string> TargetedPaths(AdaptableLayers model) => TargetedLayers(model).Select(layer => layer.ModulePath).ToList();

    private static string Targets(AdaptableLayers model)
    {
        IReadOnlyList<string> names = model.NamesInBlock;
        string shortest = names.Select(name => name.Split('.')[^1]).Distinct().First();
        return $"targets are {string.Join(", ", names)} or a suffix of one, such as {shortest}";
    }

    private static bool Matches(string fullName, string target) =>
        !string.IsNullOrEmpty(target) && (fullName == target || fullName.EndsWith("." + target, StringComparison.Ordinal));
}
