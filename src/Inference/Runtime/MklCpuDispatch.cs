using System.Runtime.InteropServices;

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
    /// <summary>
    /// libtorch links an MKL other than <see cref="MklCpuDispatch.VerifiedMklVersion"/>, whose
    /// vendor check was not read: the bypass is skipped rather than writing into code not looked at.
    /// </summary>
    OtherMklVersion,
}

/// <summary>
/// libtorch runs float32 GEMM on the CPU through the Intel MKL it links in. MKL chooses its kernels
/// by asking whether the CPU is Intel's, not which instructions it has, so on AMD processors it
/// falls back to a generic path, several times slower for few-row products with the same results
/// within float32 rounding (figures in docs/benchmarks.md).
/// <para>
/// MKL caches both answers of its vendor check in two statics that start at -1 ("not asked yet")
/// and reads them through its exported <c>mkl_serv_intel_cpu_true</c> and <c>mkl_serv_intel_cpu</c>
/// (the same hook the widely used LD_PRELOAD workaround replaces). Setting them to 1 before MKL's
/// first GEMM makes MKL choose by the instruction sets the CPU reports, which is what it does on
/// Intel processors. That layout was read in one MKL build, <see cref="VerifiedMklVersion"/>; in
/// any other, and where either function is not in the expected form, MKL has already chosen, or
/// the CPU does not need it, nothing changes.
/// </para>
/// </summary>
public static unsafe class MklCpuDispatch
{
    /// <summary>Set this environment variable to 1 to keep MKL's own vendor check.</summary>
    public const string KeepVendorCheckVariable = "LLMSERVER_MKL_KEEP_VENDOR_CHECK";

    /// <summary>
    /// MKL_Get_Version_String of the MKL in libtorch-cpu 2.10.0 (TorchSharp 0.107.0), the build
    /// whose two vendor-check functions were disassembled. A libtorch update that brings another
    /// MKL needs them read again before this changes.
    /// </summary>
    public const string VerifiedMklVersion =
        "Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605 for Intel(R) 64 architecture applications";

    private static readonly string[] CachedVendorChecks = ["mkl_serv_intel_cpu_true", "mkl_serv_intel_cpu"];
    private static readonly Lock Gate = new();
    private static MklDispatchOutcome? _outcome;
    private static string _reason = "";

    /// <summary>
    /// Applies the bypass once per process; later calls return the first outcome. Call before the
    /// first matrix product: the engine, the model constructor and the benchmarks do.
    /// </summary>
    public static MklDispatchOutcome EnsureApplied()
    {
        lock (Gate)
        {
            if (_outcome is null)
            {
                (_outcome, _reason) = Apply();
            }
            return _outcome.Value;
        }
    }

    /// <summary>The outcome of <see cref="EnsureApplied"/> with what it found, in words, for the log.</summary>
    public static string Describe()
    {
        MklDispatchOutcome outcome = EnsureApplied();
        lock (Gate)
        {
            return _reason.Length == 0 ? outcome.ToString() : $"{outcome} ({_reason})";
        }
    }

    /// <summary>
    /// What the bypass does on a processor with a given linked MKL, before MKL's code is looked at:
    /// <see cref="MklDispatchOutcome.VendorCheckBypassed"/> means "go ahead". The MKL version is
    /// read only for processors that need the bypass.
    /// </summary>
    internal static MklDispatchOutcome Decide(HostProcessor processor, Func<string?> linkedMklVersion)
    {
        if (!processor.IsX64Linux || !processor.HasAvx2AndFma || processor.IsIntel)
        {
            return MklDispatchOutcome.NotNeeded;
        }
        return linkedMklVersion() switch
        {
            null => MklDispatchOutcome.NotRecognized,
            VerifiedMklVersion => MklDispatchOutcome.VendorCheckBypassed,
            _ => MklDispatchOutcome.OtherMklVersion,
        };
    }

    private static (MklDispatchOutcome Outcome, string Reason) Apply()
    {
        if (Environment.GetEnvironmentVariable(KeepVendorCheckVariable) == "1")
        {
            return (MklDispatchOutcome.Disabled, $"{KeepVendorCheckVariable}=1");
        }
        string? linkedVersion = null;
        MklDispatchOutcome planned = Decide(HostProcessor.Current, () => linkedVersion = LinkedMklVersion());
        switch (planned)
        {
            case MklDispatchOutcome.NotNeeded:
                return (planned, "");
            case MklDispatchOutcome.NotRecognized:
                return (planned, "libtorch_cpu does not report an MKL version");
            case MklDispatchOutcome.OtherMklVersion:
                return (planned, $"libtorch links \"{linkedVersion}\"; the bypass was verified against \"{VerifiedMklVersion}\"");
        }
        if (!LibTorchCpu.TryGetHandle(out IntPtr library))
        {
            return (MklDispatchOutcome.NotRecognized, "libtorch_cpu is not loaded");
        }
        var cachedAnswers = new List<IntPtr>(CachedVendorChecks.Length);
        foreach (string name in CachedVendorChecks)
        {
            if (!NativeLibrary.TryGetExport(library, name, out IntPtr function)
                || CachedAnswerOf((byte*)function) is not IntPtr cached)
            {
                return (MklDispatchOutcome.NotRecognized, $"{name} is missing or does not open by loading its cached answer");
            }
            cachedAnswers.Add(cached);
        }
        if (cachedAnswers.Any(cached => *(int*)cached != -1))
        {
            return (MklDispatchOutcome.TooLate, "MKL has already chosen its kernels");
        }
        foreach (IntPtr cached in cachedAnswers)
        {
            *(int*)cached = 1;
        }
        return (MklDispatchOutcome.VendorCheckBypassed, "");
    }

    /// <summary>
    /// MKL's own version string, or null where libtorch_cpu has no MKL. Asking for it does not run
    /// MKL's vendor check (checked: both cached answers stay -1).
    /// </summary>
    internal static string? LinkedMklVersion()
    {
        if (!LibTorchCpu.TryGetHandle(out IntPtr library)
            || !NativeLibrary.TryGetExport(library, "MKL_Get_Version_String", out IntPtr function))
        {
            return null;
        }
        const int capacity = 256;
        byte* buffer = stackalloc byte[capacity];
        new Span<byte>(buffer, capacity).Clear();
        ((delegate* unmanaged<byte*, int, void>)function)(buffer, capacity - 1);
        return Marshal.PtrToStringAnsi((IntPtr)buffer)?.Trim();
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
}
