using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace LlmServer.Bench.Progress;

/// <summary>
/// A one-line progress bar, <c>[#########.........] 45/100  2 errors  12.3 s</c>, redrawn in place with
/// <c>\r</c> on standard error so that standard output keeps only the result. Redraws at most about ten
/// times a second: reports arrive once per request (or training step), far faster than a terminal needs them.
/// </summary>
public sealed class ConsoleProgressBar : IProgress<BenchmarkProgress>
{
    private const int BarWidth = 30;
    private static readonly TimeSpan MinRedrawInterval = TimeSpan.FromMilliseconds(100);

    private readonly TextWriter _output;
    private readonly Lock _lock = new();
    private long _lastDrawn;
    private int _lastLineLength;
    private bool _lineOpen;

    public ConsoleProgressBar(TextWriter? output = null)
    {
        _output = output ?? Console.Error;
    }

    public void Report(BenchmarkProgress value) =>
        Report(value.Completed, value.Total, string.Create(CultureInfo.InvariantCulture,
            $"{value.Errors} error{(value.Errors == 1 ? "" : "s")}  {value.Elapsed.TotalSeconds:F1} s"));

    /// <summary>Draws <paramref name="completed"/> of <paramref name="total"/>, then <paramref name="detail"/>; the last one ends the line.</summary>
    public void Report(long completed, long total, string detail)
    {
        lock (_lock)
        {
            bool finished = completed >= total;
            if (!finished && _lineOpen && Stopwatch.GetElapsedTime(_lastDrawn) < MinRedrawInterval)
            {
                return;
            }
            Draw(completed, total, detail);
            if (finished)
            {
                EndLine();
            }
        }
    }

    /// <summary>Ends the bar's line if one is drawn, for a run that stops before its last request (cancelled, failed).</summary>
    public void Complete()
    {
        lock (_lock)
        {
            EndLine();
        }
    }

    private void Draw(long completed, long total, string detail)
    {
        int filled = total > 0 ? (int)(BarWidth * Math.Min(completed, total) / total) : BarWidth;
        var line = new StringBuilder()
            .Append('[').Append('#', filled).Append('.', BarWidth - filled).Append("] ")
            .Append(CultureInfo.InvariantCulture, $"{completed}/{total}  ")
            .Append(detail);
        int length = line.Length;
        // \r only moves the cursor: whatever a longer previous line left behind must be overwritten.
        line.Append(' ', Math.Max(0, _lastLineLength - length));
        _output.Write('\r');
        _output.Write(line.ToString());
        _output.Flush();
        _lastLineLength = length;
        _lastDrawn = Stopwatch.GetTimestamp();
        _lineOpen = true;
    }

    private void EndLine()
    {
        if (_lineOpen)
        {
            _output.WriteLine();
            _output.Flush();
            _lineOpen = false;
            _lastLineLength = 0;
        }
    }
}
