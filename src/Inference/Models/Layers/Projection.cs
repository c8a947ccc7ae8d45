using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// A learned linear map of the last dimension, y = x W (+ b), with the weight in the orientation its
/// checkpoint stores it, so loading is a plain copy: nn.Linear's (out, in) in <see cref="Linear"/>,
/// GPT-2's Conv1D (in, out) in <see cref="Conv1D"/>. Knows its module path, by which LoRA adapters
/// target it, and packs itself for serving.
/// </summary>
public abstract class Projection : Module
{
    private readonly Parameter _weight;
    private readonly Parameter? _bias;
    // Serving only, on the CPU: the weight in the form the products read (MKL's packed float32, bfloat16 or int8).
    private IServingMatrix? _serving;

    // Every model builds its products from projections, so MKL's kernels are chosen before the first one runs.
    static Projection() => MklCpuDispatch.EnsureApplied();

    protected Projection(string name, int inputs, int outputs, bool hasBias, bool storedAsOutByIn, ScalarType dtype, Device device, string? modulePath)
        : base(name)
    {
        StoredAsOutByIn = storedAsOutByIn;
        ModulePath = modulePath;
        // Registered by hand under the checkpoint's names: state_dict() keys end in "weight" and "bias".
        _weight = new Parameter(empty(storedAsOutByIn ? [outputs, inputs] : [inputs, outputs], dtype, device));
        register_parameter("weight", _weight);
        if (hasBias)
        {
            _bias = new Parameter(zeros([outputs], dtype, device));
            register_parameter("bias", _bias);
        }
    }

    public Parameter Weight => _weight;

    /// <summary>Where the layer sits ("model.layers.0.self_attn.q_proj", "h.0.attn.c_attn"); null for a layer no adapter can target.</summary>
    public string? ModulePath { get; }

    /// <summary>nn.Linear's (out, in) weight; false for Conv1D's (in, out).</summary>
    public bool StoredAsOutByIn { get; }

    /// <summary>Builds the weight's serving form (CPU only); call again after the weights change.</summary>
    public void PrepareForServing(WeightFormat format = WeightFormat.Float32)
    {
        if (FullPrecisionReleased)
        {
            throw new InvalidOperationException($"{ModulePath ?? "this projection"}: its float32 weight was released; load the model again to serve it in another form");
        }
        _serving?.Dispose();
        _serving = ServingMatrix.TryCreate(_weight, StoredAsOutByIn, format);
    }

    /// <summary>The form serving multiplies by, or null where it keeps torch's product.</summary>
    public IServingMatrix? Serving => _serving;

    /// <summary>Whether <see cref="ReleaseFullPrecision"/> freed the parameter's values.</summary>
    public bool FullPrecisionReleased { get; private set; }

    /// <summary>
    /// Frees the float32 weight once a bfloat16 or int8 form serves it: every product, training's included,
    /// then reads that form, and the parameter keeps its name but no values (its shape becomes (0)).
    /// Nothing happens for a float32 form, whose products need the parameter.
    /// </summary>
    public void ReleaseFullPrecision()
    {
        if (_serving is null || _serving.Format == WeightFormat.Float32 || FullPrecisionReleased)
        {
            return;
        }
        using (torch.no_grad())
        using (Tensor nothing = empty([0], _weight.dtype, _weight.device))
        {
            _weight.set_(nothing);
        }
        FullPrecisionReleased = true;
    }

    public Tensor Forward(Tensor x, AdapterRouting? adapters = null)
    {
        Tensor y = ForwardBase(x);                                                       // (..., out)
        return adapters is null || ModulePath is null ? y : adapters.AddUpdates(ModulePath, x, y);
    }

    private Tensor ForwardBase(Tensor x)
    {
        // Only under inference mode (the engine), so training keeps autograd's products.
        if (_serving is not null && x.dim() == 2 && torch.is_inference_mode_enabled())
        {
            return _serving.Multiply(x, _bias);                                          // (N, out)
        }
        // Training on a base served in bfloat16 or int8 (a LoRA fine-tune of the served model, QLoRA's
        // way) multiplies by the weights serving multiplies by, so the adapter learns to correct those.
        if (_serving?.Dequantize() is { } servedOutByIn)
        {
            using (servedOutByIn)
            {
                using Tensor served = StoredAsOutByIn ? servedOutByIn.alias() : servedOutByIn.t();   // as stored
                return Unpacked(x, served, _bias);                                       // (..., out)
            }
        }
        return Unpacked(x, _weight, _bias);                                              // (..., out)
    }

    /// <summary>The product in the stored orientation, with autograd: (..., in) to (..., out).</summary>
    protected abstract Tensor Unpacked(Tensor x, Tensor weight, Tensor? bias);

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _serving?.Dispose();
        }
        base.Dispose(disposing);
    }
}

/// <summary>PyTorch's nn.Linear as Llama-family checkpoints (and every lm_head) store it: weight (out, in), optional bias, y = x Wᵀ + b.</summary>
public sealed class Linear(int inputs, int outputs, bool hasBias, ScalarType dtype, Device device, string? modulePath = null)
    : Projection("linear", inputs, outputs, hasBias, storedAsOutByIn: true, dtype, device, modulePath)
{
    protected override Tensor Unpacked(Tensor x, Tensor weight, Tensor? bias) => functional.linear(x, weight, bias);   // (..., out)
}

/// <summary>GPT-2's Conv1D: weight stored (in, out) and always a bias, y = x W + b.</summary>
public sealed class Conv1D(int inputs, int outputs, ScalarType dtype, Device device, string? modulePath = null)
    : Projection("conv1d", inputs, outputs, hasBias: true, storedAsOutByIn: false, dtype, device, modulePath)
{
    // A Scalar converted implicitly from 1 is referenced by nothing once its native handle is passed on, so the
    // finalizer may free it while the native call still reads it; a fine-tuning run crashed in this add with a
    // c10 "toFloat" check on such a freed Scalar. A static one stays reachable for the life of the process.
    private static readonly Scalar One = 1.ToScalar();

    protected override Tensor Unpacked(Tensor x, Tensor weight, Tensor? bias)
    {
        if (x.dim() == 2)
        {
            return addmm(bias!, x, weight, beta: 1, alpha: 1);                           // (N, out)
        }
        using Tensor product = x.matmul(weight);                                         // (..., out)
        return product.add(bias!, One);
    }
}
