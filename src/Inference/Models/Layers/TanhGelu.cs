using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Layers;

/// <summary>
/// GELU's tanh approximation (GPT-2's <c>gelu_new</c>): 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).
/// </summary>
/// <remarks>
/// Serving computes it as x / (1 + e^(−2u)), u = √(2/π) (x + 0.044715 x³), the same function
/// (0.5 (1 + tanh u) is the logistic of 2u) with one vector exponential (<see cref="FastExponential"/>),
/// where libtorch's kernel calls a tanh accurate to one unit in the last place that cost several times
/// as much: a few percent of every step. Training keeps torch's op, which autograd differentiates.
/// </remarks>
public static unsafe class TanhGelu
{
    private const float Root2OverPi = 0.7978845608028654f;
    private const float Cubic = 0.044715f;

    /// <summary>Elements per range the threads split: one row of a small model's MLP runs on one thread.</summary>
    private const int RangeElements = 16384;

    /// <returns>A new tensor shaped as <paramref name="x"/>.</returns>
    public static Tensor Apply(Tensor x)
    {
        if (!is_inference_mode_enabled() || x.device_type != TorchSharp.DeviceType.CPU || x.dtype != ScalarType.Float32
            || !Avx2.IsSupported || !Fma.IsSupported)
        {
            return nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh);
        }
        using Tensor input = x.contiguous();
        Tensor output = empty_like(input);
        float* source = (float*)TensorMemory.DataPointer(input), destination = (float*)TensorMemory.DataPointer(output);
        int count = checked((int)input.numel());
        KernelThreads.ForRanges(count, RangeElements, (first, end) => Run(source + first, destination + first, end - first));
        return output;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run(float* x, float* y, int length)
    {
        Vector256<float> minusTwoRoot = Vector256.Create(-2f * Root2OverPi), cubic = Vector256.Create(Cubic), one = Vector256.Create(1f);
        int i = 0;
        for (; i + 8 <= length; i += 8)
        {
            Vector256<float> v = Avx.LoadVector256(x + i);
            // −2u = −2√(2/π) x (1 + 0.044715 x²)
            Vector256<float> minusTwoU = Avx.Multiply(Avx.Multiply(v, minusTwoRoot), Fma.MultiplyAdd(Avx.Multiply(v, v), cubic, one));
            Avx.Store(y + i, Avx.Divide(v, Avx.Add(one, FastExponential.Exp(minusTwoU))));
        }
        for (; i < length; i++)
        {
            float v = x[i];
            y[i] = v / (1f + MathF.Exp(-2f * Root2OverPi * v * (1f + Cubic * v * v)));
        }
    }
}
