using System.Runtime.InteropServices;

namespace LlmServer.Inference.Runtime;

/// <summary>
/// Every engine step allocates and frees activation tensors of tens of megabytes. glibc serves
/// such sizes with mmap and returns them with munmap, so each step would page-fault and zero all
/// of that memory afresh, and the same step's time would swing with it. Serving every size from
/// the heap (no mmap at all) and never trimming keeps freed blocks for the next step, which cuts
/// page faults and the decode step's time (docs/benchmarks.md). A no-op where the C library is
/// not glibc.
/// </summary>
public static partial class NativeMemoryTuning
{
    private const int MallocTrimThreshold = -1;   // M_TRIM_THRESHOLD
    private const int MallocMmapThreshold = -3;   // M_MMAP_THRESHOLD
    private const int MallocMmapMax = -4;         // M_MMAP_MAX
    private const int LargestMmapThreshold = 32 * 1024 * 1024;   // glibc's cap on 64-bit

    /// <summary>
    /// For training outside the server: allocations from 64 KiB up are mmapped and unmapped when
    /// freed. glibc's default raises its mmap threshold each time a large block is freed, after
    /// which a training step's activations, gradients and optimizer temporaries come from the heap
    /// and fragment it: measured on a 5M-parameter GPT-2, RSS grew by about 50 MB a step (5 GB by
    /// step 70) while TorchSharp's live tensors stayed flat; with a fixed threshold it stays at 300 MB.
    /// </summary>
    public static void ReturnLargeBlocksToTheSystem()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        try
        {
            // Setting the threshold at all switches glibc's dynamic adjustment off.
            mallopt(MallocMmapThreshold, 64 * 1024);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    public static void KeepFreedMemoryForReuse()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        try
        {
            mallopt(MallocMmapThreshold, LargestMmapThreshold);
            mallopt(MallocMmapMax, 0);
            mallopt(MallocTrimThreshold, int.MaxValue);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // musl and other C libraries have no mallopt; their allocators are left as they are.
        }
    }

    /// <summary>
    /// Hands the free pages of the heap back to the system once: under <see cref="KeepFreedMemoryForReuse"/>
    /// nothing else would, so weights freed after a load (float32 values a bfloat16 or int8 form replaced,
    /// the copies quantization worked from) would stay resident for the life of the process.
    /// </summary>
    public static void ReturnFreedMemoryOnce()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        try
        {
            malloc_trim(0);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int parameter, int value);
}
