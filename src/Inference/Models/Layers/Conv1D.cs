using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// GPT-2's Conv1D: a linear layer whose weight is stored (in, out), y = x W + b.
/// Keeping the checkpoint's orientation means loading is a plain copy.
/// </summary>
public sealed class Conv1D : Module
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    // Serving only, on the CPU: the weight in MKL's packed layout (see MklPackedMatrix).
    private MklPackedMatrix? _packed;

    // Every model builds its products from Conv1D, so MKL's kernels are chosen before the first one runs.
    static Conv1D() => MklCpuDispatch.EnsureApplied();

    /// <param name="modulePath">Where the layer sits in the model ("h.0.attn.c_attn"): the name LoRA adapters target it by; null for a layer no adapter can target.</param>
    public Conv1D(int inputs, int outputs, ScalarType dtype, Device device, string? modulePath = null) : base("conv1d")
    {
        weight = new Parameter(empty([inputs, outputs], dtype, device));
        bias = new Parameter(zeros([outputs], dtype, device));
        ModulePath = modulePath;
        RegisterComponents();
    }

    public Parameter Weight => weight;

    public string? ModulePath { get; }

    /// <summary>Packs the weight for serving (CPU with MKL only); call again after the weights change.</summary>
    public void PrepareForServing()
    {
        _packed?.Dispose();
        _packed = MklPackedMatrix.TryPack(weight, storedAsOutByIn: false);
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
        if (x.dim() == 2)
        {
            return addmm(bias, x, weight, beta: 1, alpha: 1);                           // (N, out)
        }
        using Tensor product = x.matmul(weight);                                         // (..., out)
        return product.add(bias);
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
