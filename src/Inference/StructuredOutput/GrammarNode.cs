using System.Text;

namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// One kind of JSON value the grammar allows. Nodes are immutable once compiled and shared by every matcher;
/// a matcher's per-request state lives in the frames they push.
/// </summary>
internal abstract class GrammarNode(int minLength = GrammarNode.Unbounded)
{
    /// <summary>Stands for "no finite text yet" while <see cref="MinimumLengths"/> iterates.</summary>
    public const int Unbounded = int.MaxValue / 4;

    /// <summary>
    /// The fewest bytes a value of this node takes: what a reply must still spend to finish it. Constant for the
    /// leaf nodes; set by <see cref="MinimumLengths.Compute"/> for nodes built of others.
    /// </summary>
    public int MinLength { get; set; } = minLength;

    /// <summary>The nodes this one is built of, for walking a grammar.</summary>
    public virtual IEnumerable<GrammarNode> Children => [];

    /// <summary>This node's minimum length from its children's current ones (leaves: their constant).</summary>
    public virtual int ComputeMinLength() => MinLength;

    /// <summary>
    /// Begins a value of this node with its first byte <paramref name="b"/>, <paramref name="next"/> being the
    /// stack to return to once it completes; adds the resulting stacks, or nothing when the value cannot begin so.
    /// </summary>
    public abstract void Start(byte b, MatchStack? next, List<MatchStack> output);
}

/// <summary>Exactly these bytes: an enum or const value in canonical JSON, or <c>true</c>, <c>false</c>, <c>null</c>.</summary>
internal sealed class LiteralNode(byte[] text) : GrammarNode(text.Length)
{
    public static readonly LiteralNode True = new("true"u8.ToArray());
    public static readonly LiteralNode False = new("false"u8.ToArray());
    public static readonly LiteralNode Null = new("null"u8.ToArray());

    public byte[] Text { get; } = text;


    public override void Start(byte b, MatchStack? next, List<MatchStack> output) =>
        LiteralFrame.Accept(Text, 0, b, next, output);

    public override string ToString() => Encoding.UTF8.GetString(Text);
}

/// <summary>Inside a literal (also a property key): the bytes from <c>position</c> on remain to be matched.</summary>
internal sealed class LiteralFrame(byte[] text, int position) : MatchFrame
{
    public override void Step(byte b, MatchStack? next, List<MatchStack> output) => Accept(text, position, b, next, output);

    public override int MinRemaining => text.Length - position;

    public static void Accept(byte[] text, int position, byte b, MatchStack? next, List<MatchStack> output)
    {
        if (text[position] != b)
        {
            return;
        }

        if (position + 1 == text.Length)
        {
            Complete(next, output);
        }
        else
        {
            output.Add(new MatchStack(new LiteralFrame(text, position + 1), next));
        }
    }
}

/// <summary>Any of the alternatives: each one that can begin with the byte is followed until the bytes decide.</summary>
internal sealed class AnyOfNode : GrammarNode
{
    private AnyOfNode(GrammarNode[] alternatives) => Alternatives = alternatives;

    public GrammarNode[] Alternatives { get; }

    public override IEnumerable<GrammarNode> Children => Alternatives;

    public override int ComputeMinLength() => Alternatives.Min(a => a.MinLength);

    /// <summary>
    /// The alternatives without repeats (the same node twice, or two literals of the same text): a repeat would be
    /// followed as a second reading of every byte, and nested repeats would double the readings at each level.
    /// </summary>
    public static GrammarNode Of(IReadOnlyList<GrammarNode> alternatives)
    {
        var distinct = new List<GrammarNode>(alternatives.Count);
        var literals = new HashSet<string>(StringComparer.Ordinal);
        foreach (GrammarNode alternative in alternatives)
        {
            bool repeat = alternative is LiteralNode literal
                ? !literals.Add(Convert.ToBase64String(literal.Text))
                : distinct.Any(d => ReferenceEquals(d, alternative));
            if (!repeat)
            {
                distinct.Add(alternative);
            }
        }

        return distinct.Count == 1 ? distinct[0] : new AnyOfNode([.. distinct]);
    }

    public override void Start(byte b, MatchStack? next, List<MatchStack> output)
    {
        foreach (GrammarNode alternative in Alternatives)
        {
            alternative.Start(b, next, output);
        }
    }
}

/// <summary>A <c>$ref</c>: its target is set once, after compiling it, which is what lets a schema refer to itself.</summary>
internal sealed class RefNode(string reference) : GrammarNode
{
    public string Reference { get; } = reference;

    public GrammarNode? Target { get; set; }

    public override IEnumerable<GrammarNode> Children => [Target!];

    public override int ComputeMinLength() => Target!.MinLength;

    public override void Start(byte b, MatchStack? next, List<MatchStack> output) => Target!.Start(b, next, output);
}
