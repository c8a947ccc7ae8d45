namespace LlmServer.Inference.StructuredOutput;

/// <summary>Any JSON value: what <c>json_object</c> allows inside its object, and an array schema without items.</summary>
internal sealed class AnyValueNode : GrammarNode
{
    public static readonly AnyValueNode Instance = new();

    private AnyValueNode()
        : base(minLength: 1)
    {
        Array = new ArrayNode(this);
        Object = new AnyObjectNode(this);
    }

    public ArrayNode Array { get; }

    public AnyObjectNode Object { get; }

    public override void Start(byte b, MatchStack? next, List<MatchStack> output)
    {
        GrammarNode? node = b switch
        {
            (byte)'{' => Object,
            (byte)'[' => Array,
            (byte)'"' => StringNode.Instance,
            (byte)'-' or (>= (byte)'0' and <= (byte)'9') => NumberNode.Number,
            (byte)'t' => LiteralNode.True,
            (byte)'f' => LiteralNode.False,
            (byte)'n' => LiteralNode.Null,
            _ => null,
        };
        node?.Start(b, next, output);
    }
}

/// <summary>An object with any keys and any values (<c>response_format: json_object</c>).</summary>
internal sealed class AnyObjectNode(AnyValueNode values) : GrammarNode(minLength: 2)
{
    public AnyValueNode Values { get; } = values;


    public override void Start(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (b == (byte)'{')
        {
            output.Add(new MatchStack(new AnyObjectFrame(this, AnyObjectFrame.Phase.Open, 0), next));
        }
    }
}

internal sealed class AnyObjectFrame(AnyObjectNode node, AnyObjectFrame.Phase phase, int whitespace) : MatchFrame
{
    public enum Phase : byte
    {
        Open,
        AfterKey,
        AfterColon,
        AfterValue,
        AfterComma,
    }

    // The shortest continuations: "}", then ":0}", "0}", "}" and "\"\":0}" (a key, a colon, a digit, the brace).
    public override int MinRemaining => phase switch
    {
        Phase.AfterKey => 3,
        Phase.AfterColon => 2,
        Phase.AfterComma => 5,
        _ => 1,
    };

    public override void Step(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (IsWhitespace(b))
        {
            if (whitespace < JsonGrammar.MaxWhitespaceRun)
            {
                output.Add(new MatchStack(new AnyObjectFrame(node, phase, whitespace + 1), next));
            }

            return;
        }

        switch (phase)
        {
            case Phase.Open or Phase.AfterValue when b == (byte)'}':
                Complete(next, output);
                break;
            case Phase.AfterValue when b == (byte)',':
                output.Add(new MatchStack(new AnyObjectFrame(node, Phase.AfterComma, 0), next));
                break;
            case Phase.Open or Phase.AfterComma:
                StringNode.Instance.Start(b, new MatchStack(new AnyObjectFrame(node, Phase.AfterKey, 0), next), output);
                break;
            case Phase.AfterKey when b == (byte)':':
                output.Add(new MatchStack(new AnyObjectFrame(node, Phase.AfterColon, 0), next));
                break;
            case Phase.AfterColon:
                node.Values.Start(b, new MatchStack(new AnyObjectFrame(node, Phase.AfterValue, 0), next), output);
                break;
        }
    }
}
