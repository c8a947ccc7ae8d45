using LlmServer.Inference.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// The low-rank update of one linear layer (GPT-2's Conv1D or an nn.Linear): lora_A (r, in) then
/// lora_B (out, r), both nn.Linear without bias as in PEFT, so that the state_dict keys end in "lora_A.weight" and "lora_B.weight".
/// </summary>
public sealed class LoraLayer : Module
{
    private readonly Conv1D lora_A;
    private readonly Conv1D lora_B;

    public LoraLayer(int inputs, int outputs, int rank, ScalarType dtype, Device device) : base("lora")
    {
        lora_A = Conv1D.LinearWithoutBias(inputs, rank, dtype, device);
        lora_B = Conv1D.LinearWithoutBias(rank, outputs, dtype, device);
        RegisterComponents();
    }

    /// <summary>lora_A.weight, (r, in).</summary>
    public Parameter A => lora_A.Weight;

    /// <summary>lora_B.weight, (out, r).</summary>
    public Parameter B => lora_B.Weight;

    /// <summary>x Aᵀ Bᵀ, unscaled: (..., in) in, (..., out) out.</summary>
    public Tensor Update(Tensor x)
    {
        using Tensor down = lora_A.Forward(x);                                           // (..., r)
        return lora_B.Forward(down);                                                     // (..., out)
    }
}
