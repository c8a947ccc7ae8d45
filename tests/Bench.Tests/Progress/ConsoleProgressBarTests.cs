using LlmServer.Bench.Progress;

namespace LlmServer.Bench.Tests.Progress;

public sealed class ConsoleProgressBarTests
{
    [Fact]
    public void RedrawsOneLineInPlace_ThrottlesUpdates_AndEndsTheLineWhenDone()
    {
        var output = new StringWriter();
        var bar = new ConsoleProgressBar(output);

        for (int completed = 1; completed <= 100; completed++)
        {
            bar.Report(new BenchmarkProgress(completed, 100, completed / 50, TimeSpan.FromSeconds(completed / 10.0)));
        }

        string text = output.ToString();
        int draws = text.Count(c => c == '\r');
        // The first report, the last, and whatever a slow machine let through in between.
        Assert.InRange(draws, 2, 10);
        Assert.StartsWith("\r[..............................] 1/100  0 errors  0.1 s", text);
        Assert.EndsWith($"[{new string('#', 30)}] 100/100  2 errors  10.0 s{Environment.NewLine}", text);
        Assert.Single(text.Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Complete_EndsAnUnfinishedLine_Once()
    {
        var output = new StringWriter();
        var bar = new ConsoleProgressBar(output);

        bar.Report(new BenchmarkProgress(3, 10, 1, TimeSpan.FromSeconds(1.5)));
        bar.Complete();
        bar.Complete();

        Assert.Equal($"\r[#########.....................] 3/10  1 error  1.5 s{Environment.NewLine}", output.ToString());
    }
}
