using System.Runtime.InteropServices;

namespace LlmServer.Inference.Engine;

/// <summary>
/// Memory still available on the serving device, for sizing the KV cache as a fraction of it.
/// TorchSharp 0.107 exposes no CUDA memory query, so on CUDA we ask the CUDA runtime directly.
/// </summary>
internal static partial class DeviceMemory
{
    public static long AvailableBytes(string device)
    {
        return device.StartsWith("cuda", StringComparison.Ordinal) ? CudaFreeBytes(device) : CpuAvailableBytes();
    }

    /// <summary>MemAvailable from /proc/meminfo: what the kernel can hand out without swapping.</summary>
    private static long CpuAvailableBytes()
    {
        const string meminfo = "/proc/meminfo";
        if (File.Exists(meminfo))
        {
            foreach (string line in File.ReadLines(meminfo))
            {
                if (line.StartsWith("MemAvailable:", StringComparison.Ordinal))
                {
                    string kilobytes = line["MemAvailable:".Length..].Trim().Split(' ')[0];
                    return long.Parse(kilobytes, System.Globalization.CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        return GC.GetGCMemoryInfo().TotalAvailableMemoryBytes - Environment.WorkingSet;
    }

    private static long CudaFreeBytes(string device)
    {
        int ordinal = device.Contains(':') ? int.Parse(device[(device.IndexOf(':') + 1)..], System.Globalization.CultureInfo.InvariantCulture) : 0;
        foreach (string library in new[] { "libcudart.so", "libcudart.so.13", "libcudart.so.12" })
        {
            if (NativeLibrary.TryLoad(library, out IntPtr handle)
                && NativeLibrary.TryGetExport(handle, "cudaMemGetInfo", out IntPtr memGetInfo)
                && NativeLibrary.TryGetExport(handle, "cudaSetDevice", out IntPtr setDevice))
            {
                unsafe
                {
                    var select = (delegate* unmanaged<int, int>)setDevice;
                    var query = (delegate* unmanaged<ulong*, ulong*, int>)memGetInfo;
                    ulong free, total;
                    if (select(ordinal) == 0 && query(&free, &total) == 0)
                    {
                        return (long)free;
                    }
                }
            }
        }
        throw new ArgumentException("cannot query free CUDA memory (no libcudart found); give --kv-cache-memory as a size such as 8GiB");
    }
}
