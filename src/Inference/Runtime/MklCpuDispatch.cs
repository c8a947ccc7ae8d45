using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace LlmServer.Inference.Runtime;

/// <summary>What <see cref="MklCpuDispatch.EnsureApplied"/> found and did.</summary>
public enum MklDispatchOutcome
{
    /// <summary>MKL's vendor check was answered "Intel" before MKL chose its kernels: it picks them by instruction set.</summary>
    VendorCheckBypassed,
    /// <summary>An Intel CPU, not x86-64 Linux, or a CPU without AVX2 and FMA: MKL already does its best here.</summary>
    NotNeeded,
    /// <summary>Turned off with <see cref="MklCpuDispatch.KeepVendorCheckVariable"/>.</summary>
    Disabled,
    /// <summary>MKL had already chosen its kernels in this process, so they were left as they are.</summary>
    TooLate,
    /// <summary>This libtorch build does not have the MKL service functions in the expected form.</summary>
    NotRecognized,
}

/// <summary>
/// libtorch runs float32 GEMM on the CPU through the Intel MKL it links in. MKL chooses its kernels
/// by asking whether the CPU is Intel's, not which instructions it has, so on AMD processors it
/// falls back to a generic path. Measured on this project's 2-core AMD EPYC (AVX-512) over the GPT-2
/// 124M weight shapes: 1 row 21 -> 8 ms, 32 rows 134 -> 184 GFLOP/s, 256 rows 183 -> 205 GFLOP/s,
/// the same results within float32 rounding.
/// <para>
/// MKL caches both answers of its vendor check in two statics that start at -1 ("not asked yet")
/// and reads them through its exported <c>mkl_serv_intel_cpu_true</c> and <c>mkl_serv_intel_cpu</c>
/// (the same hook the widely used LD_PRELOAD workaround replaces). Setting them to 1 before MKL's
/// first GEMM makes MKL choose by the instruction sets the CPU reports, which is what it does on
/// Intel processors. Nothing changes if MKL has already chosen, if either function is not in the
/// expected form, or on CPUs where it is not needed.
/// </para>
/// </summary>
public static unsafe class MklCpuDispatch
{
    /// <summary>Set this environment variable to 1 to keep MKL's own vendor check.</summary>
    public const string KeepVendorCheckVariable = "LLMSERVER_MKL_KEEP_VENDOR_CHECK";

    private static readonly string[] CachedVendorChecks = ["mkl_serv_intel_cpu_true", "mkl_serv_intel_cpu"];
    private static readonly Lock Gate = new();
    private static MklDispatchOutcome? _outcome;

    /// <summary>
    /// Applies the bypass once per process; later calls return the first outcome. Call before the
    /// first matrix product: the engine, the model constructor and the benchmarks do.
    /// </summary>
    public static MklDispatchOutcome EnsureApplied()
    {
        lock (Gate)
        {
            _outcome ??= Apply();
            return _outcome.Value;
        }
    }

    private static MklDispatchOutcome Apply()
    {
        if (Environment.GetEnvironmentVariable(KeepVendorCheckVariable) == "1")
        {
            return MklDispatchOutcome.Disabled;
        }
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64
            || !Avx2.IsSupported || !Fma.IsSupported || IsIntel())
        {
            return MklDispatchOutcome.NotNeeded;
        }
        if (!LibTorchCpu.TryGetHandle(out IntPtr library))
        {
            return MklDispatchOutcome.NotRecognized;
        }
        var cachedAnswers = new List<IntPtr>(CachedVendorChecks.Length);
        foreach (string name in CachedVendorChecks)
        {
            if (!NativeLibrary.TryGetExport(library, name, out IntPtr function)
                || CachedAnswerOf((byte*)function) is not IntPtr cached)
            {
                return MklDispatchOutcome.NotRecognized;
            }
            cachedAnswers.Add(cached);
        }
        if (cachedAnswers.Any(cached => *(int*)cached != -1))
        {
            return MklDispatchOutcome.TooLate;
        }
        foreach (IntPtr cached in cachedAnswers)
        {
            *(int*)cached = 1;
        }
        return MklDispatchOutcome.VendorCheckBypassed;
    }

    // Both functions open with "mov eax, [rip + disp32]" (8B 05 disp32), loading their cached answer.
    private static IntPtr? CachedAnswerOf(byte* function)
    {
        if (function[0] != 0x8B || function[1] != 0x05)
        {
            return null;
        }
        int displacement = *(int*)(function + 2);
        return (IntPtr)(function + 6 + displacement);
    }

    private static bool IsIntel()
    {
        (int _, int ebx, int ecx, int edx) = X86Base.CpuId(0, 0);
        Span<int> vendor = [ebx, edx, ecx];
        return MemoryMarshal.AsBytes(vendor).SequenceEqual("GenuineIntel"u8);
    }
}
