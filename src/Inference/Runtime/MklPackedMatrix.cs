using System.Runtime.InteropServices;
using LlmServer.Inference.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Runtime;

/// <summary>
/// A float32 weight matrix kept in MKL's packed GEMM layout, for serving on the CPU.
/// </summary>
/// <remarks>
/// An ordinary GEMM call copies the weight into MKL's internal panel layout on every call, or,
/// with the weight on the left, leaves a transposed result to copy back. Packing once with
/// <c>sgemm_pack</c> and multiplying with <c>sgemm_compute</c> skips both (docs/benchmarks.md,
/// "Products", has the rates). MKL asks for a buffer larger than the matrix but writes about one
/// matrix's worth, so packing costs about one more copy of the weights in resident memory.
/// <para>
/// MKL is reached through the Fortran entry points libtorch_cpu exports (LP64 integers), the same
/// MKL and threads libtorch uses. Where they are missing (libtorch without MKL) nothing is packed
/// and callers keep their torch products.
/// </para>
/// </remarks>
public sealed unsafe class MklPackedMatrix : IServingMatrix
{
    private const int PackedForRows = 256;
    private static readonly Api? Mkl = Api.Load();

    private readonly int _inputs;
    private readonly int _outputs;
    private void* _packed;

    private MklPackedMatrix(int inputs, int outputs, void* packed, long bytes)
    {
        _inputs = inputs;
        _outputs = outputs;
        _packed = packed;
        Bytes = bytes;
    }

    public int Inputs => _inputs;

    public int Outputs => _outputs;

    public WeightFormat Format => WeightFormat.Float32;

    public long Bytes { get; }

    /// <summary>
    /// Packs W for products x W, from the weight stored (in, out), or stored (out, in) when
    /// <paramref name="storedAsOutByIn"/> (PyTorch's nn.Linear). Null where MKL's packed GEMM is
    /// missing or the weight is not a float32 matrix in host memory.
    /// </summary>
    public static MklPackedMatrix? TryPack(Tensor weight, bool storedAsOutByIn)
    {
        if (Mkl is not { } mkl || weight.dim() != 2 || weight.dtype != ScalarType.Float32
            || weight.device_type != TorchSharp.DeviceType.CPU)
        {
            return null;
        }
        // Both handles are disposed here: a handle left to the finalizer holds a live tensor until
        // some later garbage collection, which /metrics' tensor count would show after every load.
        using Tensor detached = weight.detach();
        using Tensor source = detached.contiguous();
        int inputs = (int)(storedAsOutByIn ? source.shape[1] : source.shape[0]);
        int outputs = (int)(storedAsOutByIn ? source.shape[0] : source.shape[1]);
        // Column-major terms: A is the (out x in) matrix, which the (in, out) row-major storage
        // is as it stands (ld = out) and the (out, in) storage is transposed (ld = in).
        byte identifier = (byte)'A', transpose = storedAsOutByIn ? (byte)'T' : (byte)'N';
        // MKL lays the packed matrix out for the row count it is told here, though any count can use
        // it. Packed for one row, batched products ran well below their best; packed for 256, every
        // row count measured ran within a few percent of its best.
        int m = outputs, n = PackedForRows, k = inputs, leading = storedAsOutByIn ? inputs : outputs;
        float alpha = 1f;
        nuint bytes = mkl.PackGetSize(&identifier, &m, &n, &k);
        void* packed = NativeMemory.AlignedAlloc(bytes, 64);
        mkl.Pack(&identifier, &transpose, &m, &n, &k, &alpha, (float*)TensorMemory.DataPointer(source), &leading, (float*)packed);
        return new MklPackedMatrix(inputs, outputs, packed, (long)bytes);
    }

    /// <summary>x W (+ bias): (N, in) float32 on the CPU in, a new (N, out) tensor out.</summary>
    public Tensor Multiply(Tensor x, Tensor? bias)
    {
        ObjectDisposedException.ThrowIf(_packed is null, this);
        if (x.dim() != 2 || x.shape[1] != _inputs || x.dtype != ScalarType.Float32)
        {
            throw new ArgumentException($"expected (N, {_inputs}) float32 rows", nameof(x));
        }
        using Tensor rows = x.contiguous();                                              // (N, in)
        int count = (int)rows.shape[0];
        Tensor output = empty([count, _outputs], ScalarType.Float32, CPU);              // (N, out)
        if (bias is not null)
        {
            // MKL adds the product onto C (beta = 1), so C starts as the bias in every row. A
            // copy, never contiguous(): for one row that would hand back the bias's own memory.
            using Tensor biasRows = bias.expand(count, _outputs);                        // (N, out), a view
            output.copy_(biasRows);
        }
        if (count == 0)
        {
            return output;
        }
        // Column-major: C (out x N, ld = out) = A (out x in, packed) * B (in x N, ld = in), which
        // is the row-major (N, out) result with x's rows as B's columns.
        byte packedA = (byte)'P', plainB = (byte)'N';
        int m = _outputs, n = count, k = _inputs, leadingA = _outputs, leadingB = _inputs, leadingC = _outputs;
        float beta = bias is null ? 0f : 1f;
        Mkl!.Compute(&packedA, &plainB, &m, &n, &k, (float*)_packed, &leadingA,
            (float*)TensorMemory.DataPointer(rows), &leadingB, &beta, (float*)TensorMemory.DataPointer(output), &leadingC);
        return output;
    }

    /// <summary>Null: the packed matrix holds the parameter's own float32 values.</summary>
    public Tensor? Dequantize() => null;

    public void Dispose()
    {
        if (_packed is not null)
        {
            NativeMemory.AlignedFree(_packed);
            _packed = null;
        }
    }

    /// <summary>
    /// Whether <see cref="MultiplyByTransposed"/> runs MKL's own kernels for this CPU: MKL is there, and it
    /// chose its kernels by instruction set (an Intel CPU, or the vendor check bypassed). On an AMD CPU
    /// whose check was kept MKL takes its generic path, slower than the reduced forms' own kernels.
    /// </summary>
    internal static bool CanMultiplyPlain { get; } = Mkl is not null
        && MklCpuDispatch.EnsureApplied() is MklDispatchOutcome.VendorCheckBypassed or MklDispatchOutcome.NotNeeded;

    /// <summary>
    /// y (N, out) = x (N, in) · Wᵀ, plus y's own values when <paramref name="addToOutput"/>, through MKL's plain
    /// GEMM; W is (out, in) row-major with rows <paramref name="weightStride"/> floats apart, and y's rows
    /// are <paramref name="outputStride"/> floats apart (a slice of wider rows).
    /// </summary>
    internal static void MultiplyByTransposed(float* weights, int outputs, int inputs, int weightStride, float* x, int rows, float* y, int outputStride, bool addToOutput) =>
        MultiplyRowMajor(x, inputs, weights, weightStride, rightTransposed: true, y, outputStride, rows, outputs, inputs, addToOutput);

    /// <summary>
    /// C (m, n) = A (m, k) · B through MKL's plain GEMM, every matrix row-major with its own row stride:
    /// B is (k, n), or stored (n, k) when <paramref name="rightTransposed"/>. C's own values are added when
    /// <paramref name="addToOutput"/>.
    /// </summary>
    internal static void MultiplyRowMajor(float* left, int leftStride, float* right, int rightStride, bool rightTransposed,
        float* output, int outputStride, int m, int n, int k, bool addToOutput)
    {
        // MKL is column-major, where a row-major matrix reads as its transpose: Cᵀ (n x m) = Bᵀ · Aᵀ.
        byte rightOperation = rightTransposed ? (byte)'T' : (byte)'N', leftOperation = (byte)'N';
        int rowsOfResult = n, columnsOfResult = m, inner = k, leadingRight = rightStride, leadingLeft = leftStride, leadingOutput = outputStride;
        float alpha = 1f, beta = addToOutput ? 1f : 0f;
        Mkl!.Multiply(&rightOperation, &leftOperation, &rowsOfResult, &columnsOfResult, &inner, &alpha, right, &leadingRight,
            left, &leadingLeft, &beta, output, &leadingOutput);
    }

    private sealed class Api
    {
        public required delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, float*, int*, float*, int*, float*, float*, int*, void> Multiply { get; init; }
        public required delegate* unmanaged<byte*, int*, int*, int*, nuint> PackGetSize { get; init; }
        public required delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, float*, int*, float*, void> Pack { get; init; }
        public required delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, int*, float*, int*, float*, float*, int*, void> Compute { get; init; }

        public static Api? Load()
        {
            if (!LibTorchCpu.TryGetHandle(out IntPtr library)
                || !NativeLibrary.TryGetExport(library, "SGEMM_PACK_GET_SIZE", out IntPtr getSize)
                || !NativeLibrary.TryGetExport(library, "SGEMM_PACK", out IntPtr pack)
                || !NativeLibrary.TryGetExport(library, "SGEMM_COMPUTE", out IntPtr compute)
                || !NativeLibrary.TryGetExport(library, "SGEMM", out IntPtr multiply))
            {
                return null;
            }
            return new Api
            {
                Multiply = (delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, float*, int*, float*, int*, float*, float*, int*, void>)multiply,
                PackGetSize = (delegate* unmanaged<byte*, int*, int*, int*, nuint>)getSize,
                Pack = (delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, float*, int*, float*, void>)pack,
                Compute = (delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, int*, float*, int*, float*, float*, int*, void>)compute,
            };
        }
    }
}
