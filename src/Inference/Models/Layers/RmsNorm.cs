using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// Root-mean-square normalization with parameter "weight", as transformers' LlamaRMSNorm:
/// w * x / sqrt(mean(x²) + eps) over the last dimension, computed in float32 and returned in x's dtype.
/// </summary>
public sealed class RmsNorm : Module
{
    private readonly Parameter weight;

    // Held for the module's life: a Scalar converted implicitly at the call is left to the finalizer,
    // and TorchSharp 0.107 does not keep it alive through the native call that reads it, so a garbage
    // collection started by another thread during that call can free it under libtorch.
    private readonly Scalar _epsilon;

    public RmsNorm(int width, double epsilon, ScalarType dtype, Device device) : base("rms_norm")
    {
        weight = new Parameter(ones([width], dtype, device));
        _epsilon = epsilon;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        Tensor wide = x.dtype == ScalarType.Float32 ? x : x.to(ScalarType.Float32);      // (..., C)
        Tensor meanSquare = wide.mul(wide).mean([-1L], keepdim: true);                    // (..., 1)
        Tensor normalized = wide.mul(meanSquare.add(_epsilon).rsqrt());                   // (..., C)
        Tensor narrowed = normalized.dtype == x.dtype ? normalized : normalized.to(x.dtype);
        return weight.mul(narrowed).MoveToOuterDisposeScope();                           // (..., C)
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _epsilon.Dispose();
        }
        base.Dispose(disposing);
    }
}
