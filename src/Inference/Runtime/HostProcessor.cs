using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace LlmServer.Inference.Runtime;

/// <summary>The facts about the processor that decide whether MKL needs its vendor check answered.</summary>
/// <param name="Vendor">CPUID's vendor string ("GenuineIntel", "AuthenticAMD", ...); empty off x86.</param>
/// <param name="IsX64Linux">An x86-64 process on Linux, the one platform the bypass was read on.</param>
/// <param name="HasAvx2AndFma">The instruction sets of MKL's fast float32 kernels.</param>
internal readonly record struct HostProcessor(string Vendor, bool IsX64Linux, bool HasAvx2AndFma)
{
    public bool IsIntel => Vendor == "GenuineIntel";

    public static HostProcessor Current { get; } = new(
        X86Base.IsSupported ? CpuIdVendor() : "",
        OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64,
        Avx2.IsSupported && Fma.IsSupported);

    private static string CpuIdVendor()
    {
        (int _, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        Span<int> vendor = [ebx, edx, ecx];
        return System.Text.Encoding.ASCII.GetString(MemoryMarshal.AsBytes(vendor));
    }
}
