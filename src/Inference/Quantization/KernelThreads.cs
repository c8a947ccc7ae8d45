using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using LlmServer.Inference.Runtime;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// How the hand-written products and decode attention split their work: the index space is cut into
/// a few contiguous ranges per thread, whole blocks each, and the threads take ranges from a shared
/// counter until none are left. Every weight byte is read by exactly one core and no two threads
/// write the same cache line of the result.
/// </summary>
/// <remarks>
/// The threads are libtorch's own OpenMP team, entered through libgomp's <c>GOMP_parallel</c> (the
/// call a compiled <c>#pragma omp parallel</c> makes). After each operator libtorch's workers spin for
/// a while waiting for the next; a .NET thread-pool worker started beside them has to share a core
/// with a spinning one, and a decode step, which alternates torch operators and these products some
/// fifty times, ran at about half speed that way. In the same team the spinning workers are the ones
/// that pick the products up. Where libgomp cannot be found (another OpenMP runtime, another OS) the
/// work falls back to <see cref="Parallel.For(int, int, Action{int})"/>.
///
/// Ranges are taken, not dealt: with one fixed half each, a thread that the OS (or, on a virtual
/// machine, the host) pauses for a moment holds the other at the end-of-region barrier, and a serving
/// step passes some hundred such barriers. Several ranges per thread let the one that is running
/// take the paused one's share.
/// </remarks>
internal static unsafe class KernelThreads
{
    private static readonly OpenMp? Team = OpenMp.Find();
    private static int _count = Environment.ProcessorCount;

    /// <summary>Threads a product uses; follows <c>--threads</c> like torch's own.</summary>
    public static int Count
    {
        get => _count;
        set => _count = Math.Max(1, value);
    }

    /// <summary>Whether the products run in libtorch's OpenMP team (true) or on the .NET thread pool.</summary>
    public static bool UsesOpenMpTeam => Team is not null;

    /// <summary>Ranges each thread may take, so one that runs late leaves little for the others to wait on.</summary>
    private const int RangesPerThread = 8;

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, outputs) in ranges that are multiples of <paramref name="block"/>.</summary>
    public static void ForOutputRanges(int outputs, int block, Action<int, int> body) => ForRanges(outputs, block, body, minimumBlocksPerRange: 4);

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, count) split into ranges, each a multiple of
    /// <paramref name="block"/> (the last may end short) and at least <paramref name="minimumBlocksPerRange"/> blocks
    /// where the count allows; the ranges run in any order, on any thread, each exactly once.
    /// </summary>
    public static void ForRanges(int count, int block, Action<int, int> body, int minimumBlocksPerRange = 1)
    {
        int blocks = (count + block - 1) / block;
        int ranges = Math.Min(Count * RangesPerThread, Math.Max(1, blocks / minimumBlocksPerRange));
        int threads = Math.Min(Count, ranges);
        if (threads <= 1)
        {
            body(0, count);
            return;
        }
        var work = new RangeWork(count, block, ranges, body);
        if (Team is { } team)
        {
            GCHandle handle = GCHandle.Alloc(work);
            try
            {
                team.Parallel(&RunInTeam, (void*)GCHandle.ToIntPtr(handle), (uint)threads, 0);
            }
            finally
            {
                handle.Free();
            }
            work.ThrowIfFailed();
            return;
        }
        // Failures are kept and rethrown as in the team, so callers see the body's own exception, not an AggregateException.
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
        {
            try
            {
                work.Run();
            }
            catch (Exception exception)
            {
                work.Fail(exception);
            }
        });
        work.ThrowIfFailed();
    }

    /// <summary>Every thread of the team runs this; a managed exception must not cross back into libgomp.</summary>
    [UnmanagedCallersOnly]
    private static void RunInTeam(void* data)
    {
        var work = (RangeWork)GCHandle.FromIntPtr((IntPtr)data).Target!;
        try
        {
            work.Run();
        }
        catch (Exception exception)
        {
            work.Fail(exception);
        }
    }

    private sealed class RangeWork(int count, int block, int ranges, Action<int, int> body)
    {
        private readonly int _blocks = (count + block - 1) / block;
        private int _taken;
        private ExceptionDispatchInfo? _failure;

        /// <summary>Takes ranges until none are left (or one has failed); range r is blocks [r·B/R, (r+1)·B/R).</summary>
        public void Run()
        {
            for (int range = Interlocked.Increment(ref _taken) - 1; range < ranges && _failure is null; range = Interlocked.Increment(ref _taken) - 1)
            {
                int start = (int)((long)_blocks * range / ranges) * block;
                int end = Math.Min(count, (int)((long)_blocks * (range + 1) / ranges) * block);
                if (start < end)
                {
                    body(start, end);
                }
            }
        }

        public void Fail(Exception exception) => Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(exception), null);

        public void ThrowIfFailed() => _failure?.Throw();
    }

    /// <summary>The libgomp libtorch loaded, found by path among the process's mapped files (its name carries a build hash).</summary>
    private sealed class OpenMp
    {
        public required delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> Parallel { get; init; }

        public static OpenMp? Find()
        {
            if (!OperatingSystem.IsLinux() || !LibTorchCpu.TryGetHandle(out _))
            {
                return null;
            }
            try
            {
                string? path = File.ReadLines("/proc/self/maps")
                    .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                    .Where(fields => fields.Length >= 6 && Path.GetFileName(fields[5]).StartsWith("libgomp", StringComparison.Ordinal))
                    .Select(fields => fields[5])
                    .FirstOrDefault();
                if (path is null || !NativeLibrary.TryLoad(path, out IntPtr library)
                    || !NativeLibrary.TryGetExport(library, "GOMP_parallel", out IntPtr parallel))
                {
                    return null;
                }
                return new OpenMp
                {
                    Parallel = (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)parallel,
                };
            }
            catch (IOException)
            {
                return null;
            }
        }
    }
}
