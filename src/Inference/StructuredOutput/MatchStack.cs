namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// One way the bytes fed so far can continue: an immutable linked stack of frames, the innermost first. Being
/// immutable, a matcher's whole state is an array of these, so saving it is keeping a reference and restoring
/// it is putting the reference back: the token mask walk rolls back far more often than it advances.
/// </summary>
internal sealed class MatchStack
{
    /// <summary>The document is complete; no further byte is acceptable (the root takes no trailing whitespace).</summary>
    public static readonly MatchStack Done = new(null!, null);

    public MatchStack(MatchFrame top, MatchStack? next)
    {
        Top = top;
        Next = next;
    }

    public MatchFrame Top { get; }

    /// <summary>The enclosing frames, already in the state they take once <see cref="Top"/> completes.</summary>
    public MatchStack? Next { get; }

    /// <summary>Adds to <paramref name="output"/> every stack that results from accepting <paramref name="b"/>.</summary>
    public static void Feed(MatchStack stack, byte b, List<MatchStack> output)
    {
        // A frame that may end without a terminator (a number) either takes the byte or ends and lets the
        // enclosing frame have it: both are followed.
        for (MatchStack? s = stack; s is not null && !ReferenceEquals(s, Done); s = s.Next)
        {
            // Most bytes of a reply are plain string characters, which leave the stack as it is: reusing it
            // spares an allocation per byte and lets the matcher see that nothing changed.
            if (ReferenceEquals(s.Top, StringFrame.Plain) && StringFrame.KeepsPlain(b))
            {
                output.Add(s);
                return;
            }

            s.Top.Step(b, s.Next, output);
            if (!s.Top.CanEnd)
            {
                return;
            }
        }
    }

    /// <summary>The fewest bytes that complete the document from this reading.</summary>
    public int MinBytesToEnd
    {
        get
        {
            int total = 0;
            for (MatchStack? s = this; s is not null && !ReferenceEquals(s, Done); s = s.Next)
            {
                total += s.Top.MinRemaining;
            }

            return total;
        }
    }

    public bool CanEnd
    {
        get
        {
            for (MatchStack? s = this; s is not null; s = s.Next)
            {
                if (ReferenceEquals(s, Done))
                {
                    return true;
                }

                if (!s.Top.CanEnd)
                {
                    return false;
                }
            }

            return true;
        }
    }
}

/// <summary>The state of one value being matched: what it accepts next, given the stack below it.</summary>
internal abstract class MatchFrame
{
    /// <summary>Adds the stacks that follow from accepting <paramref name="b"/>; adds nothing to refuse it.</summary>
    public abstract void Step(byte b, MatchStack? next, List<MatchStack> output);

    /// <summary>Whether the value may end here without consuming another byte (numbers, repetitions).</summary>
    public virtual bool CanEnd => false;

    /// <summary>The fewest bytes that complete this frame's value (0 when it <see cref="CanEnd"/>).</summary>
    public abstract int MinRemaining { get; }

    /// <summary>The value is complete: what remains is the enclosing frames, or the end of the document.</summary>
    protected static void Complete(MatchStack? next, List<MatchStack> output) => output.Add(next ?? MatchStack.Done);

    internal static bool IsWhitespace(byte b) => b is (byte)' ' or (byte)'\n' or (byte)'\r' or (byte)'\t';
}

/// <summary>The first frame of a matcher: the root value has not begun.</summary>
internal sealed class StartFrame(GrammarNode root) : MatchFrame
{
    public override int MinRemaining => root.MinLength;

    public override void Step(byte b, MatchStack? next, List<MatchStack> output) => root.Start(b, next, output);
}
