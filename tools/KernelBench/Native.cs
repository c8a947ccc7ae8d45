using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace KernelBench;

/// <summary>Raw pointers into tensors and the MKL entry points libtorch_cpu exports.</summary>
internal static unsafe class Native
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    public static void* Data(Tensor t) => (void*)THSTensor_data(t.Handle);

    // MKL's bf16 x bf16 -> f32 GEMM (Fortran LP64 entry). There is no packed variant exported and no
    // integer GEMM (gemm_s8u8s32 / gemm_s16s16s32) at all in libtorch_cpu 2.10.
    public static readonly delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, ushort*, int*, ushort*, int*, float*, float*, int*, void> GemmBf16 = Load("GEMM_BF16BF16F32");

    private static delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, ushort*, int*, ushort*, int*, float*, float*, int*, void> Load(string name)
    {
        get_num_threads();
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", out IntPtr lib) || !NativeLibrary.TryGetExport(lib, name, out IntPtr fn))
        {
            return null;
        }
        return (delegate* unmanaged<byte*, byte*, int*, int*, int*, float*, ushort*, int*, ushort*, int*, float*, float*, int*, void>)fn;
    }

    /// <summary>y (N, out) = x (N, in) W^T with W (out, in) bf16, x bf16, column-major view as in MklPackedMatrix.</summary>
    public static void MklBf16(ushort* w, ushort* x, float* y, int n, int inputs, int outputs)
    {
        byte ta = (byte)'T', tb = (byte)'N';
        int m = outputs, nn = n, k = inputs, lda = inputs, ldb = inputs, ldc = outputs;
        float alpha = 1f, beta = 0f;
        GemmBf16(&ta, &tb, &m, &nn, &k, &alpha, w, &lda, x, &ldb, &beta, y, &ldc);
    }
}
