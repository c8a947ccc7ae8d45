using LlmServer.Bench.Scenarios;
using LlmServer.Inference.Tests;
using Xunit.Abstractions;

namespace LlmServer.Tests;

/// <summary>
/// A short run of the soak `bench soak` runs for minutes: every kind of request (chat,
/// completions, streams, tokenize, refusals, disconnects) at concurrency 8 must get the answer it
/// should, never a 5xx, and leave no tensor behind. Live tensors are process-wide, so it runs apart from other servers.
/// </summary>
[Collection(ProcessWideMetricsCollection.Name)]
public sealed class SoakTests(ITestOutputHelper output)
{
    [Fact]
    public async Task A_mixed_load_gets_no_5xx_no_unexpected_answer_and_leaves_no_tensor_behind()
    {
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"),
            "--kv-cache-memory", "64MiB"]);
        var log = new StringWriter();

        SoakTest.Result result = await SoakTest.RunAsync(new SoakTest.Options(server.BaseAddress, TimeSpan.FromSeconds(15)), log, CancellationToken.None);

        output.WriteLine(log.ToString());
        Assert.True(result.Requests >= 50, $"only {result.Requests} requests");
        Assert.Equal(0, result.ServerErrors);
        Assert.True(result.Unexpected == 0, string.Join("\n", result.FirstProblems));
        Assert.Equal(8, result.Kinds.Count);
        // Tensors are counted process-wide: other tests' garbage may be freed meanwhile, so fewer is fine; more is a leak.
        Assert.True(result.TensorsAfter <= result.TensorsBefore, $"live tensors grew from {result.TensorsBefore} to {result.TensorsAfter}");
    }
}
