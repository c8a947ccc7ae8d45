using LlmServer.Inference.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Linear = LlmServer.Inference.Models.Layers.Linear;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// The low-rank update of one projection: lora_A (r, in) then lora_B (out, r), both nn.Linear without
/// bias as in PEFT, so that the state_dict keys end in "lora_A.weight" and "lora_B.weight".
/// </summary>
public sealed class LoraLayer : Module
{
    private readonly Linear lora_A;
    private readonly Linear lora_B;

    public LoraLayer(int inputs, int outputs, int rank, ScalarType dtype, Device device) : base("lora")
    {
        lora_A = new Linear(inputs, rank, hasBias: false, dtype, device);
        lora_B = new Linear(rank, outputs, hasBias: false, dtype, device);
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
