namespace LlmServer.Inference.StructuredOutput;

/// <summary>A JSON array whose items all match <see cref="Items"/>.</summary>
internal sealed class ArrayNode(GrammarNode items) : GrammarNode(minLength: 2)
{
    public GrammarNode Items { get; } = items;

    public override IEnumerable<GrammarNode> Children => [Items];


    public override void Start(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (b == (byte)'[')
        {
            output.Add(new MatchStack(new ArrayFrame(this, ArrayFrame.Phase.Open, 0), next));
        }
    }
}

internal sealed class ArrayFrame(ArrayNode node, ArrayFrame.Phase phase, int whitespace) : MatchFrame
{
    public enum Phase : byte
    {
        Open,
        AfterItem,
        AfterComma,
    }

    public override int MinRemaining => phase == Phase.AfterComma ? Math.Min(GrammarNode.Unbounded, node.Items.MinLength + 1) : 1;

    public override void Step(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (IsWhitespace(b))
        {
            if (whitespace < JsonGrammar.MaxWhitespaceRun)
            {
                output.Add(new MatchStack(new ArrayFrame(node, phase, whitespace + 1), next));
            }

            return;
        }

        switch (phase)
        {
            case Phase.Open when b == (byte)']':
            case Phase.AfterItem when b == (byte)']':
                Complete(next, output);
                break;
            case Phase.AfterItem when b == (byte)',':
                output.Add(new MatchStack(new ArrayFrame(node, Phase.AfterComma, 0), next));
                break;
            case Phase.Open:
            case Phase.AfterComma:
                node.Items.Start(b, new MatchStack(new ArrayFrame(node, Phase.AfterItem, 0), next), output);
                break;
        }
    }
}
