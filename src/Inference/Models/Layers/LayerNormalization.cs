using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Layers;

/// <summary>Layer normalization with parameters "weight" and "bias".</summary>
/// <remarks>
/// Serving on the host normalizes in C#: a decode step's few rows take a microsecond here, where
/// libtorch's operator (its dispatch, and three result tensors of which serving keeps one) costs
/// several, twice a layer. Training keeps torch's op, which autograd differentiates.
/// </remarks>
public sealed unsafe class LayerNormalization : Module
{
    private readonly Parameter weight;
    private readonly Parameter bias;
    private readonly double _epsilon;
    private readonly long[] _normalizedShape;

    /// <summary>Rows per range the threads split: a decode batch's rows stay on one thread, where a second would cost more to start than it saves.</summary>
    private const int RowsPerRange = 64;

    public LayerNormalization(int width, double epsilon, ScalarType dtype, Device device) : base("layer_norm")
    {
        weight = new Parameter(ones([width], dtype, device));
        bias = new Parameter(zeros([width], dtype, device));
        _epsilon = epsilon;
        _normalizedShape = [width];
        RegisterComponents();
    }

    /// <param name="x">(..., C)</param>
    /// <returns>(..., C)</returns>
    public Tensor Forward(Tensor x)
    {
        if (!is_inference_mode_enabled() || x.device_type != TorchSharp.DeviceType.CPU || x.dtype != ScalarType.Float32
            || weight.dtype != ScalarType.Float32 || !Avx2.IsSupported || !Fma.IsSupported)
        {
            return functional.layer_norm(x, _normalizedShape, weight, bias, _epsilon);
        }
        using Tensor input = x.contiguous();
        Tensor output = empty_like(input);
        int width = (int)_normalizedShape[0], rows = checked((int)(input.numel() / width));
        float* source = (float*)TensorMemory.DataPointer(input), destination = (float*)TensorMemory.DataPointer(output);
        float* scale = (float*)TensorMemory.DataPointer(weight), shift = (float*)TensorMemory.DataPointer(bias);
        float epsilon = (float)_epsilon;
        KernelThreads.ForRanges(rows, RowsPerRange, (first, end) =>
        {
            for (int row = first; row < end; row++)
            {
                NormalizeRow(source + (long)row * width, destination + (long)row * width, scale, shift, width, epsilon);
            }
        });
        return output;
    }

    /// <summary>y = (x − mean) / √(variance + ε) · scale + shift, the variance taken about the mean (two passes, as torch does).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void NormalizeRow(float* x, float* y, float* scale, float* shift, int width, float epsilon)
    {
        // Two sums for each pass, so the additions of one wait less on the other's.
        int vectorEnd = width / 8 * 8, pairEnd = width / 16 * 16;
        Vector256<float> sum = Vector256<float>.Zero, otherSum = Vector256<float>.Zero;
        int i = 0;
        for (; i < pairEnd; i += 16)
        {
            sum = Avx.Add(sum, Avx.LoadVector256(x + i));
            otherSum = Avx.Add(otherSum, Avx.LoadVector256(x + i + 8));
        }
        for (; i < vectorEnd; i += 8)
        {
            sum = Avx.Add(sum, Avx.LoadVector256(x + i));
        }
        float total = Vector256.Sum(Avx.Add(sum, otherSum));
        for (; i < width; i++)
        {
            total += x[i];
        }
        float mean = total / width;
        Vector256<float> means = Vector256.Create(mean), squares = Vector256<float>.Zero, otherSquares = Vector256<float>.Zero;
        for (i = 0; i < pairEnd; i += 16)
        {
            Vector256<float> centered = Avx.Subtract(Avx.LoadVector256(x + i), means);
            Vector256<float> otherCentered = Avx.Subtract(Avx.LoadVector256(x + i + 8), means);
            squares = Fma.MultiplyAdd(centered, centered, squares);
            otherSquares = Fma.MultiplyAdd(otherCentered, otherCentered, otherSquares);
        }
        for (; i < vectorEnd; i += 8)
        {
            Vector256<float> centered = Avx.Subtract(Avx.LoadVector256(x + i), means);
            squares = Fma.MultiplyAdd(centered, centered, squares);
        }
        float squareSum = Vector256.Sum(Avx.Add(squares, otherSquares));
        for (i = vectorEnd; i < width; i++)
        {
            squareSum += (x[i] - mean) * (x[i] - mean);
        }
        float inverseDeviation = 1f / MathF.Sqrt(squareSum / width + epsilon);
        Vector256<float> inverse = Vector256.Create(inverseDeviation);
        for (i = 0; i < vectorEnd; i += 8)
        {
            Vector256<float> normalized = Avx.Multiply(Avx.Subtract(Avx.LoadVector256(x + i), means), inverse);
            Avx.Store(y + i, Fma.MultiplyAdd(normalized, Avx.LoadVector256(scale + i), Avx.LoadVector256(shift + i)));
        }
        for (i = vectorEnd; i < width; i++)
        {
            y[i] = (x[i] - mean) * inverseDeviation * scale[i] + shift[i];
        }
    }
}
