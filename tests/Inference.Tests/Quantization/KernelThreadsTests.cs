using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using LlmServer.Inference.Quantization;

namespace LlmServer.Inference.Tests.Quantization;

/// <summary>
/// How the products and decode attention split their work: every index exactly once, in whole blocks,
/// whatever the thread count, and a failure inside a range reaches the caller as itself.
/// </summary>
/// <remarks>
/// Alone in its collection: the tests set the process-wide <see cref="KernelThreads.Count"/>, which
/// would otherwise change how other classes' products split while they run.
/// </remarks>
[Collection(nameof(KernelThreadsTests))]
public sealed class KernelThreadsTests
{
    public static TheoryData<int, int> CountsAndBlocks()
    {
        var data = new TheoryData<int, int>();
        foreach (int count in new[] { 0, 1, 2, 3, 4, 5, 7, 8, 100, 1001 })
        {
            foreach (int block in new[] { 1, 4 })
            {
                data.Add(count, block);
            }
        }
        return data;
    }

    // More threads than this machine's cores too: the split must not depend on them.
    private static readonly int[] ThreadCounts = [1, 2, 3, 8];

    [Theory]
    [MemberData(nameof(CountsAndBlocks))]
    public void ForRanges_visits_every_index_once_in_whole_blocks(int count, int block)
    {
        foreach (int threads in ThreadCounts)
        {
            WithThreads(threads, () => AssertPartition(count, block, body => KernelThreads.ForRanges(count, block, body), $"{threads} threads"));
        }
    }

    [Theory]
    [MemberData(nameof(CountsAndBlocks))]
    public void ForOutputRanges_visits_every_index_once_in_whole_blocks(int count, int block)
    {
        foreach (int threads in ThreadCounts)
        {
            WithThreads(threads, () => AssertPartition(count, block, body => KernelThreads.ForOutputRanges(count, block, body), $"{threads} threads"));
        }
    }

    [Fact]
    public void ForRanges_cuts_more_ranges_than_threads_and_runs_them_on_several()
    {
        var ranges = new ConcurrentBag<(int Start, int End, int Thread)>();
        WithThreads(2, () => KernelThreads.ForRanges(1000, 1, (start, end) =>
        {
            ranges.Add((start, end, Environment.CurrentManagedThreadId));
            Thread.Sleep(1);
        }));
        Assert.True(ranges.Count > 2, $"{ranges.Count} ranges for 2 threads");
        Assert.Equal(2, ranges.Select(range => range.Thread).Distinct().Count());
    }

    [Fact]
    public void A_stalled_range_leaves_the_rest_to_the_other_threads()
    {
        // The thread that takes the first range waits there until every other range has run: with a
        // fixed share per thread it would wait for its own share, and time out.
        WithThreads(2, () =>
        {
            const int count = 64;
            int firstRangeEnd = -1;
            var others = new ConcurrentBag<(int Start, int End, int Thread)>();
            int stalledThread = -1;
            int visited = 0;
            KernelThreads.ForRanges(count, 1, (start, end) =>
            {
                Interlocked.Add(ref visited, end - start);
                if (start == 0)
                {
                    firstRangeEnd = end;
                    stalledThread = Environment.CurrentManagedThreadId;
                    Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref visited) == count, TimeSpan.FromSeconds(20)),
                        $"the other ranges were not taken while the first stalled ({Volatile.Read(ref visited)} of {count} indices visited)");
                }
                else
                {
                    others.Add((start, end, Environment.CurrentManagedThreadId));
                }
            });
            Assert.Equal(count, visited);
            Assert.True(firstRangeEnd < count, "the whole range went to one call");
            Assert.DoesNotContain(others, range => range.Thread == stalledThread);
        });
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_exception_in_a_range_reaches_the_caller_and_the_next_call_still_runs(bool onTheFirstRange)
    {
        WithThreads(4, () =>
        {
            var thrown = Assert.Throws<InvalidOperationException>(() => KernelThreads.ForRanges(1000, 4, (start, end) =>
            {
                if ((start == 0) == onTheFirstRange)
                {
                    throw new InvalidOperationException($"range {start}..{end}");
                }
            }));
            Assert.StartsWith("range ", thrown.Message);

            AssertPartition(1000, 4, body => KernelThreads.ForRanges(1000, 4, body), "after a failure");
        });
    }

    [Fact]
    public void An_exception_on_a_single_thread_reaches_the_caller_as_itself()
    {
        WithThreads(1, () => Assert.Throws<InvalidOperationException>(
            () => KernelThreads.ForRanges(10, 1, (_, _) => throw new InvalidOperationException())));
    }

    [Fact]
    public void Runs_in_libtorchs_OpenMP_team_on_linux_x64()
    {
        // libtorch's Linux x64 build links libgomp, which KernelThreads finds among the mapped files.
        Assert.True(OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64,
            "this test is written for the Linux x64 libtorch the project ships with");
        Assert.True(KernelThreads.UsesOpenMpTeam);
    }

    private static void AssertPartition(int count, int block, Action<Action<int, int>> run, string context)
    {
        var visits = new int[count];
        var ranges = new ConcurrentBag<(int Start, int End)>();
        run((start, end) =>
        {
            ranges.Add((start, end));
            for (int i = start; i < end; i++)
            {
                Interlocked.Increment(ref visits[i]);
            }
        });

        for (int i = 0; i < count; i++)
        {
            Assert.True(visits[i] == 1, $"{context}: index {i} of {count} visited {visits[i]} times");
        }
        foreach ((int start, int end) in ranges)
        {
            Assert.True(start % block == 0, $"{context}: range {start}..{end} starts inside a block of {block}");
            Assert.True(end == count || (end - start) % block == 0, $"{context}: range {start}..{end} of {count} is not whole blocks of {block}");
        }
    }

    private static void WithThreads(int threads, Action action)
    {
        int before = KernelThreads.Count;
        KernelThreads.Count = threads;
        try
        {
            action();
        }
        finally
        {
            KernelThreads.Count = before;
        }
    }
}

[CollectionDefinition(nameof(KernelThreadsTests), DisableParallelization = true)]
public sealed class KernelThreadsCollection;
