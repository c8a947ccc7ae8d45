using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// PyTorch's nn.Linear as Llama-family checkpoints store it: weight (out, in), optional bias,
/// y = x Wᵀ + b. Like <see cref="Conv1D"/> it knows its path for LoRA and packs itself for serving.
/// </summary>
public sealed class Linear : Module
{
    private readonly Parameter weight;
    private readonly Parameter? bias;
    // Serving only, on the CPU: the weight in MKL's packed layout (see MklPackedMatrix).
    private MklPackedMatrix? _packed;

    // MKL's kernels are chosen before the first product runs, as for Conv1D.
    static Linear() => MklCpuDispatch.EnsureApplied();

    /// <param name="modulePath">Where the layer sits ("model.layers.0.self_attn.q_proj"): the name LoRA adapters target it by.</param>
    public Linear(int inputs, int outputs, bool hasBias, ScalarType dtype, Device device, string? modulePath = null) : base("linear")
    {
        weight = new Parameter(empty([outputs, inputs], dtype, device));
        bias = hasBias ? new Parameter(zeros([outputs], dtype, device)) : null;
        ModulePath = modulePath;
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public string? ModulePath { get; }

    /// <summary>Packs the weight for serving (CPU with MKL only); call again after the weights change.</summary>
    public void PrepareForServing()
    {
        _packed?.Dispose();
        _packed = MklPackedMatrix.TryPack(weight, storedAsOutByIn: true);
    }

    public Tensor Forward(Tensor x, AdapterRouting? adapters = null)
    {
        Tensor y = ForwardBase(x);                                                       // (..., out)
        return adapters is null || ModulePath is null ? y : adapters.AddUpdates(ModulePath, x, y);
    }

    private Tensor ForwardBase(Tensor x)
    {
        // Only under inference mode (the engine), so training keeps autograd's products.
        if (_packed is not null && x.dim() == 2 && torch.is_inference_mode_enabled())
        {
            return _packed.Multiply(x, bias);                                            // (N, out)
        }
        return functional.linear(x, weight, bias);                                       // (..., out)
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _packed?.Dispose();
        }
        base.Dispose(disposing);
    }
}
