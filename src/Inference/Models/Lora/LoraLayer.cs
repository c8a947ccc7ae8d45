using LlmServer.Inference.Models.Layers;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Lora;

/// <summary>
/// The low-rank update of one Conv1D: lora_A (r, in) then lora_B (out, r), both nn.Linear without
/// bias as in PEFT, so that the state_dict keys end in "lora_A.weight" and "lora_B.weight".
/// </summary>
public sealed class LoraLayer : Module
{
    [ComponentName(Name = "lora_A")] private readonly Conv1D _down;
    [ComponentName(Name = "lora_B")] private readonly Conv1D _up;

    public LoraLayer(int inputs, int outputs, int rank, ScalarType dtype, Device device) : base("lora")
    {
        _down = Conv1D.LinearWithoutBias(inputs, rank, dtype, device);
        _up = Conv1D.LinearWithoutBias(rank, outputs, dtype, device);
        RegisterComponents();
    }

    /// <summary>lora_A.weight, (r, in).</summary>
    public Parameter A => _down.Weight;

    /// <summary>lora_B.weight, (out, r).</summary>
    public Parameter B => _up.Weight;

    /// <summary>x Aᵀ Bᵀ, unscaled: (..., in) in, (..., out) out.</summary>
    public Tensor Update(Tensor x)
    {
        using Tensor down = _down.Forward(x);                                            // (..., r)
        return _up.Forward(down);                                                        // (..., out)
    }
}
