using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using LlmServer.Inference.Runtime;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// How the hand-written products split their work: each thread takes one contiguous range of output
/// columns, so every weight byte is read by exactly one core and no two threads write the same cache
/// line of the result.
/// </summary>
/// <remarks>
/// The threads are libtorch's own OpenMP team, entered through libgomp's <c>GOMP_parallel</c> (the
/// call a compiled <c>#pragma omp parallel</c> makes). After each operator libtorch's workers spin for
/// a while waiting for the next; a .NET thread-pool worker started beside them has to share a core
/// with a spinning one, and a decode step, which alternates torch operators and these products some
/// fifty times, ran at about half speed that way. In the same team the spinning workers are the ones
/// that pick the products up. Where libgomp cannot be found (another OpenMP runtime, another OS) the
/// work falls back to <see cref="Parallel.For(int, int, Action{int})"/>.
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

    /// <summary>Runs <paramref name="body"/>(start, end) over [0, outputs) in ranges that are multiples of <paramref name="block"/>.</summary>
    public static void ForOutputRanges(int outputs, int block, Action<int, int> body) => ForRanges(outputs, block, body, minimumBlocksPerThread: 4);

    /// <summary>
    /// Runs <paramref name="body"/>(start, end) over [0, count) split into one range per thread, each a
    /// multiple of <paramref name="block"/> and at least <paramref name="minimumBlocksPerThread"/> blocks.
    /// </summary>
    public static void ForRanges(int count, int block, Action<int, int> body, int minimumBlocksPerThread = 1)
    {
        int threads = Math.Min(Count, Math.Max(1, count / (block * minimumBlocksPerThread)));
        if (threads <= 1)
        {
            body(0, count);
            return;
        }
        var work = new RangeWork(count, block, body);
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
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            try
            {
                work.Run(t, threads);
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
            work.Run(Team!.ThreadNumber(), Team.TeamSize());
        }
        catch (Exception exception)
        {
            work.Fail(exception);
        }
    }

    private sealed class RangeWork(int count, int block, Action<int, int> body)
    {
        private ExceptionDispatchInfo? _failure;

        /// <summary>Thread <paramref name="thread"/> of <paramref name="threads"/> takes its share of whole blocks.</summary>
        public void Run(int thread, int threads)
        {
            int chunk = (count / threads + block - 1) / block * block;
            int start = Math.Min(count, thread * chunk);
            int end = thread == threads - 1 ? count : Math.Min(count, start + chunk);
            if (start < end)
            {
                body(start, end);
            }
        }

        public void Fail(Exception exception) => Interlocked.CompareExchange(ref _failure, ExceptionDispatchInfo.Capture(exception), null);

        public void ThrowIfFailed() => _failure?.Throw();
    }

    /// <summary>The libgomp libtorch loaded, found by path among the process's mapped files (its name carries a build hash).</summary>
    private sealed class OpenMp
    {
        public required delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void> Parallel { get; init; }
        public required delegate* unmanaged<int> ThreadNumber { get; init; }
        public required delegate* unmanaged<int> TeamSize { get; init; }

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
                    || !NativeLibrary.TryGetExport(library, "GOMP_parallel", out IntPtr parallel)
                    || !NativeLibrary.TryGetExport(library, "omp_get_thread_num", out IntPtr threadNumber)
                    || !NativeLibrary.TryGetExport(library, "omp_get_num_threads", out IntPtr teamSize))
                {
                    return null;
                }
                return new OpenMp
                {
                    Parallel = (delegate* unmanaged<delegate* unmanaged<void*, void>, void*, uint, uint, void>)parallel,
                    ThreadNumber = (delegate* unmanaged<int>)threadNumber,
                    TeamSize = (delegate* unmanaged<int>)teamSize,
                };
            }
            catch (IOException)
            {
                return null;
            }
        }
    }
}
