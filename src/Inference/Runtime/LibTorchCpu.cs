using System.Runtime.InteropServices;

namespace LlmServer.Inference.Runtime;

/// <summary>The libtorch_cpu library TorchSharp loaded, for the MKL entry points it exports.</summary>
internal static class LibTorchCpu
{
    /// <summary>The handle of the already loaded libtorch_cpu; false where it cannot be found.</summary>
    public static bool TryGetHandle(out IntPtr library)
    {
        // TorchSharp loads libtorch (and with it libtorch_cpu) on its first call; this one does no math.
        TorchSharp.torch.get_num_threads();
        return NativeLibrary.TryLoad("libtorch_cpu.so", out library);
    }
}
