namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// Its parts one after the other with nothing between them: a tool call's marker, its JSON object and its closing
/// marker. Every part consumes at least one byte, so a sequence never ends before its last part begins.
/// </summary>
internal sealed class SequenceNode(GrammarNode[] parts) : GrammarNode
{
    public GrammarNode[] Parts { get; } = parts;

    public override IEnumerable<GrammarNode> Children => Parts;

    public override int ComputeMinLength() => MinLengthFrom(0);

    public int MinLengthFrom(int index)
    {
        int total = 0;
        for (int i = index; i < Parts.Length; i++)
        {
            total = Math.Min(Unbounded, total + Parts[i].MinLength);
        }

        return total;
    }

    public override void Start(byte b, MatchStack? next, List<MatchStack> output) => StartPart(0, b, next, output);

    /// <summary>Begins part <paramref name="index"/> with <paramref name="b"/>, the parts after it waiting below.</summary>
    public void StartPart(int index, byte b, MatchStack? next, List<MatchStack> output)
    {
        MatchStack? afterPart = index + 1 < Parts.Length ? new MatchStack(new SequenceFrame(this, index + 1), next) : next;
        Parts[index].Start(b, afterPart, output);
    }
}

/// <summary>Between two parts of a sequence: part <c>index</c> begins with the next byte.</summary>
internal sealed class SequenceFrame(SequenceNode node, int index) : MatchFrame
{
    public override void Step(byte b, MatchStack? next, List<MatchStack> output) => node.StartPart(index, b, next, output);

    public override int MinRemaining => node.MinLengthFrom(index);
}

/// <summary>
/// One or more of <see cref="Item"/>, at most <see cref="MaxCount"/>, with <see cref="Separator"/>'s bytes between
/// two: parallel tool calls. Having matched as many as it may, the repetition ends; below that it may end or go on.
/// </summary>
internal sealed class RepeatNode(GrammarNode item, byte[] separator, int maxCount) : GrammarNode
{
    public GrammarNode Item { get; } = item;

    public byte[] Separator { get; } = separator;

    public int MaxCount { get; } = maxCount;

    public override IEnumerable<GrammarNode> Children => [Item];

    public override int ComputeMinLength() => Item.MinLength;

    public override void Start(byte b, MatchStack? next, List<MatchStack> output) => StartItem(1, b, next, output);

    /// <summary>Begins item number <paramref name="count"/> (from 1) with <paramref name="b"/>.</summary>
    public void StartItem(int count, byte b, MatchStack? next, List<MatchStack> output)
    {
        MatchStack? afterItem = count < MaxCount ? new MatchStack(new RepeatFrame(this, count, RepeatFrame.Phase.AfterItem), next) : next;
        Item.Start(b, afterItem, output);
    }
}

/// <summary>After item <c>count</c> of a repetition (may end, or take the separator), or after its separator.</summary>
internal sealed class RepeatFrame(RepeatNode node, int count, RepeatFrame.Phase phase) : MatchFrame
{
    public enum Phase : byte
    {
        AfterItem,
        AfterSeparator,
    }

    public override bool CanEnd => phase == Phase.AfterItem;

    public override int MinRemaining => phase == Phase.AfterItem ? 0 : node.Item.MinLength;

    public override void Step(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (phase == Phase.AfterSeparator)
        {
            node.StartItem(count + 1, b, next, output);
        }
        else if (node.Separator.Length == 0)
        {
            node.StartItem(count + 1, b, next, output);
        }
        else
        {
            var afterSeparator = new MatchStack(new RepeatFrame(node, count, Phase.AfterSeparator), next);
            LiteralFrame.Accept(node.Separator, 0, b, afterSeparator, output);
        }
    }
}
