using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Layers;

/// <summary>Layer normalization with parameters "weight" and "bias".</summary>
public sealed class LayerNormalization : Module
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly double _epsilon;
    private readonly long[] _normalizedShape;

    public LayerNormalization(int width, double epsilon, ScalarType dtype, Device device) : base("layer_norm")
    {
        weight = new Parameter(ones([width], dtype, device));
        bias = new Parameter(zeros([width], dtype, device));
        _epsilon = epsilon;
        _normalizedShape = [width];
        RegisterComponents();
    }

    public Tensor Forward(Tensor x) => functional.layer_norm(x, _normalizedShape, weight, bias, _epsilon);
}
