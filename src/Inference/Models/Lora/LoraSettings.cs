using System.Text.Json.Serialization;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// The shape of a LoRA adapter, with PEFT's meaning for each field: every targeted GPT-2 Conv1D
/// gets y += Scale * x Aᵀ Bᵀ, A (Rank, in) and B (out, Rank). A fine-tuning job records how it
/// adapts the model in this record too, where rank 0 means a full fine-tune (every weight trains;
/// alpha and target modules do not apply). The job store keeps it as JSON: only the fields,
/// never what is computed from them, and use_rslora only when set.
/// </summary>
/// <param name="TargetModules">
/// PEFT's matching: a target names every module whose path ends with it at a dot boundary, so
/// "c_proj" picks both attn.c_proj and mlp.c_proj in every block, "attn.c_proj" only the attention
/// one, and "h.0.attn.c_attn" a single layer.
/// </param>
/// <param name="UseRsLora">Rank-stabilised scaling, Alpha / sqrt(Rank), as PEFT's use_rslora.</param>
public sealed record LoraSettings(int Rank, double Alpha, IReadOnlyList<string> TargetModules,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] bool UseRsLora = false)
{
    /// <summary>The layers of a block an adapter can target, relative to the block.</summary>
    public static IReadOnlyList<string> ModulesInBlock { get; } = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"];

    /// <summary>PEFT's scaling: lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora.</summary>
    [JsonIgnore]
    public double Scale => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>A fine-tuning job's "no adapter": every weight of a copy of the base trains.</summary>
    [JsonIgnore]
    public bool IsFullFineTune => Rank == 0;

    /// <summary>
    /// The module paths ("h.{layer}.attn.c_attn") this adapter covers in a model of
    /// <paramref name="layerCount"/> blocks, in model order.
    /// </summary>
    /// <exception cref="ArgumentException">Rank, alpha or a target is unusable; the message says which.</exception>
    public IReadOnlyList<string> TargetedPaths(int layerCount)
    {
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
            throw new ArgumentException(
                $"LoRA needs at least one target module (any of {string.Join(", ", ModulesInBlock)}, or a suffix such as c_proj)",
                nameof(TargetModules));
        }
        var paths = new List<string>();
        for (int layer = 0; layer < layerCount; layer++)
        {
            foreach (string module in ModulesInBlock)
            {
                string path = $"h.{layer}.{module}";
                if (TargetModules.Any(target => Matches(path, target)))
                {
                    paths.Add(path);
                }
            }
        }
        foreach (string target in TargetModules)
        {
            if (!paths.Any(path => Matches(path, target)))
            {
                throw new ArgumentException(
                    $"LoRA target module '{target}' matches no layer of this {layerCount}-layer GPT-2 " +
                    $"(targets are {string.Join(", ", ModulesInBlock)} or a suffix of one, such as c_proj)",
                    nameof(TargetModules));
            }
        }
        return paths;
    }

    // PEFT compares against the module's full name inside GPT2LMHeadModel, which starts "transformer.".
    private static bool Matches(string path, string target)
    {
        string fullName = "transformer." + path;
        return !string.IsNullOrEmpty(target) && (fullName == target || fullName.EndsWith("." + target, StringComparison.Ordinal));
    }
}
