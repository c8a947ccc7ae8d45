using System.Text.Json.Serialization;

namespace LlmServer.FineTuning.Storage;

/// <summary>
/// Our extension to OpenAI's hyperparameters: how the job adapts the model. Rank 0 is a full
/// fine-tune (every weight trains; alpha and target modules do not apply); otherwise LoRA adapters
/// of this rank, scaled by alpha / rank, on the named GPT-2 modules ("c_attn", "c_proj" (both
/// projections), "c_fc", "attn.c_proj", "mlp.c_proj").
/// </summary>
public sealed record LoraSettings(int Rank, double Alpha, IReadOnlyList<string> TargetModules)
{
    [JsonIgnore]
    public bool IsFullFineTune => Rank == 0;
}
