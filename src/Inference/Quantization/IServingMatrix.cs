using static TorchSharp.torch;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// A weight matrix in the form serving multiplies by on the CPU: MKL's packed float32 layout, bfloat16
/// or int8. Products take float32 rows and give float32 rows; autograd never sees them, so training
/// keeps torch's own products.
/// </summary>
public interface IServingMatrix : IDisposable
{
    int Inputs { get; }

    int Outputs { get; }

    WeightFormat Format { get; }

    /// <summary>Host memory the matrix holds, for the resident-memory figures.</summary>
    long Bytes { get; }

    /// <summary>x W (+ bias): (N, in) float32 in, a new (N, out) float32 tensor out.</summary>
    Tensor Multiply(Tensor x, Tensor? bias);

    /// <summary>
    /// The weight as the products see it, (out, in) float32 in a new tensor; null for float32 forms,
    /// which multiply by the parameter's own values.
    /// </summary>
    Tensor? Dequantize();
}
