namespace LlmServer.Commands;

/// <summary>
/// One window of a long text: the model reads tokens [<see cref="Start"/>, <see cref="End"/>) and the tokens
/// [<see cref="FirstScored"/>, <see cref="End"/>) count, each predicted from everything before it in the window.
/// </summary>
public readonly record struct ScoringWindow(int Start, int FirstScored, int End)
{
    public int Length => End - Start;
}

/// <summary>
/// The Hugging Face perplexity guide's sliding windows: windows of <c>context</c> tokens whose ends move by
/// <c>stride</c>, each scoring only the tokens past the previous window's end. Every token but the text's first
/// is scored exactly once, with at least <c>context - stride</c> tokens of left context once the first window is
/// passed; a stride of <c>context - 1</c> gives disjoint windows that carry over a single token.
/// </summary>
public static class SlidingWindows
{
    public static IReadOnlyList<ScoringWindow> Plan(int tokenCount, int context, int stride)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(context, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        // A window that moved by its whole length would start on a token with nothing before it to predict it from.
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(stride, context);
        var windows = new List<ScoringWindow>();
        if (tokenCount < 2)
        {
            return windows;
        }
        int end = Math.Min(context, tokenCount);
        windows.Add(new ScoringWindow(0, 1, end));
        while (end < tokenCount)
        {
            int scoredFrom = end;
            end = Math.Min(end + stride, tokenCount);
            windows.Add(new ScoringWindow(Math.Max(0, end - context), scoredFrom, end));
        }
        return windows;
    }
}
