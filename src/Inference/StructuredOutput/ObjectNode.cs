namespace LlmServer.Inference.StructuredOutput;

/// <summary>One property of a schema's object: its key as the exact JSON bytes to emit, quotes included.</summary>
internal sealed record ObjectProperty(string Name, byte[] Key, GrammarNode Value, bool Required);

/// <summary>
/// An object with exactly the schema's properties, in the schema's order (as OpenAI's strict outputs are), each
/// required one present and no other key: additionalProperties is false. Optional properties may be skipped.
/// </summary>
internal sealed class ObjectNode : GrammarNode
{
    public ObjectNode(ObjectProperty[] properties)
    {
        Properties = properties;
        // The object may close before property i only when none from i on is required.
        CanCloseBefore = new bool[properties.Length + 1];
        CanCloseBefore[properties.Length] = true;
        for (int i = properties.Length - 1; i >= 0; i--)
        {
            CanCloseBefore[i] = CanCloseBefore[i + 1] && !properties[i].Required;
        }
    }

    public ObjectProperty[] Properties { get; }

    public bool[] CanCloseBefore { get; }

    public override IEnumerable<GrammarNode> Children => Properties.Select(p => p.Value);

    public override int ComputeMinLength() => AfterOpen();

    private static int Add(int a, int b) => Math.Min(Unbounded, a + b);

    /// <summary>Property <paramref name="i"/> written whole: its key, the colon and its shortest value.</summary>
    private int PropertyLength(int i) => Add(Properties[i].Key.Length + 1, Properties[i].Value.MinLength);

    /// <summary>The fewest bytes from just after "{": the required properties with their commas, then "}".</summary>
    public int AfterOpen()
    {
        int total = 1;
        bool first = true;
        for (int i = 0; i < Properties.Length; i++)
        {
            if (Properties[i].Required)
            {
                total = Add(total, PropertyLength(i) + (first ? 0 : 1));
                first = false;
            }
        }

        return total;
    }

    /// <summary>The fewest bytes after a value, properties from <paramref name="index"/> on still to come: each required one after a comma, then "}".</summary>
    public int AfterValue(int index)
    {
        int total = 1;
        for (int i = index; i < Properties.Length; i++)
        {
            if (Properties[i].Required)
            {
                total = Add(total, PropertyLength(i) + 1);
            }
        }

        return total;
    }

    /// <summary>The fewest bytes after a comma: some property from <paramref name="index"/> up to the first required one must come.</summary>
    public int AfterComma(int index)
    {
        int best = Unbounded;
        for (int i = index; i < Properties.Length; i++)
        {
            best = Math.Min(best, Add(PropertyLength(i), AfterValue(i + 1)));
            if (Properties[i].Required)
            {
                break;
            }
        }

        return best;
    }

    public override void Start(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (b == (byte)'{')
        {
            output.Add(new MatchStack(new ObjectFrame(this, ObjectFrame.Phase.Open, 0, 0), next));
        }
    }
}

/// <summary>
/// Inside a schema object. <c>index</c> is the property whose key or value is being read (AfterKey, AfterColon)
/// or the first one that may still come (Open, AfterValue, AfterComma).
/// </summary>
internal sealed class ObjectFrame(ObjectNode node, ObjectFrame.Phase phase, int index, int whitespace) : MatchFrame
{
    public enum Phase : byte
    {
        Open,
        AfterKey,
        AfterColon,
        AfterValue,
        AfterComma,
    }

    public override int MinRemaining => phase switch
    {
        Phase.Open => node.AfterOpen(),
        Phase.AfterValue => node.AfterValue(index),
        Phase.AfterComma => node.AfterComma(index),
        Phase.AfterKey => Math.Min(GrammarNode.Unbounded, 1 + node.Properties[index].Value.MinLength + node.AfterValue(index + 1)),
        _ => Math.Min(GrammarNode.Unbounded, node.Properties[index].Value.MinLength + node.AfterValue(index + 1)),
    };

    public override void Step(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (IsWhitespace(b))
        {
            if (whitespace < JsonGrammar.MaxWhitespaceRun)
            {
                output.Add(new MatchStack(new ObjectFrame(node, phase, index, whitespace + 1), next));
            }

            return;
        }

        switch (phase)
        {
            case Phase.Open or Phase.AfterValue when b == (byte)'}':
                if (node.CanCloseBefore[index])
                {
                    Complete(next, output);
                }

                break;
            case Phase.AfterValue when b == (byte)',':
                if (index < node.Properties.Length)
                {
                    output.Add(new MatchStack(new ObjectFrame(node, Phase.AfterComma, index, 0), next));
                }

                break;
            case Phase.Open or Phase.AfterComma:
                StartKey(b, next, output);
                break;
            case Phase.AfterKey when b == (byte)':':
                output.Add(new MatchStack(new ObjectFrame(node, Phase.AfterColon, index, 0), next));
                break;
            case Phase.AfterColon:
                var afterValue = new MatchStack(new ObjectFrame(node, Phase.AfterValue, index + 1, 0), next);
                node.Properties[index].Value.Start(b, afterValue, output);
                break;
        }
    }

    private void StartKey(byte b, MatchStack? next, List<MatchStack> output)
    {
        // The next key is any optional property's up to and including the first required one's.
        for (int i = index; i < node.Properties.Length; i++)
        {
            ObjectProperty property = node.Properties[i];
            var afterKey = new MatchStack(new ObjectFrame(node, Phase.AfterKey, i, 0), next);
            LiteralFrame.Accept(property.Key, 0, b, afterKey, output);
            if (property.Required)
            {
                break;
            }
        }
    }
}
