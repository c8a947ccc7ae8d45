namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// A JSON number, or an integer (no fraction, no exponent). Digit runs are bounded (<see cref="MaxDigits"/> in the
/// integer and fraction parts, <see cref="MaxExponentDigits"/> in the exponent): like bounded whitespace, this
/// keeps a model that favours digits from running on until max_tokens, and every number it can write stays a
/// finite double that clients' JSON parsers read without loss of meaning.
/// </summary>
internal sealed class NumberNode : GrammarNode
{
    public const int MaxDigits = 15;
    public const int MaxExponentDigits = 2;

    public static readonly NumberNode Number = new(integer: false);
    public static readonly NumberNode Integer = new(integer: true);

    private NumberNode(bool integer)
        : base(minLength: 1) => IsInteger = integer;

    public bool IsInteger { get; }

    public override void Start(byte b, MatchStack? next, List<MatchStack> output) =>
        new NumberFrame(IsInteger, NumberFrame.Phase.Start, 0).Step(b, next, output);
}

internal sealed class NumberFrame(bool integer, NumberFrame.Phase phase, int digits) : MatchFrame
{
    public enum Phase : byte
    {
        Start,
        AfterMinus,
        AfterZero,
        IntegerDigits,
        FractionStart,
        FractionDigits,
        ExponentStart,
        ExponentSign,
        ExponentDigits,
    }

    public override bool CanEnd => phase is Phase.AfterZero or Phase.IntegerDigits or Phase.FractionDigits or Phase.ExponentDigits;

    public override int MinRemaining => CanEnd ? 0 : 1;

    public override void Step(byte b, MatchStack? next, List<MatchStack> output)
    {
        bool digit = b is >= (byte)'0' and <= (byte)'9';
        (Phase, int)? following = phase switch
        {
            Phase.Start when b == (byte)'-' => (Phase.AfterMinus, 0),
            Phase.Start or Phase.AfterMinus when b == (byte)'0' => (Phase.AfterZero, 1),
            Phase.Start or Phase.AfterMinus when digit => (Phase.IntegerDigits, 1),
            Phase.IntegerDigits when digit && digits < NumberNode.MaxDigits => (Phase.IntegerDigits, digits + 1),
            Phase.AfterZero or Phase.IntegerDigits when !integer && b == (byte)'.' => (Phase.FractionStart, 0),
            Phase.AfterZero or Phase.IntegerDigits or Phase.FractionDigits when !integer && b is (byte)'e' or (byte)'E' => (Phase.ExponentStart, 0),
            Phase.FractionStart when digit => (Phase.FractionDigits, 1),
            Phase.FractionDigits when digit && digits < NumberNode.MaxDigits => (Phase.FractionDigits, digits + 1),
            Phase.ExponentStart when b is (byte)'+' or (byte)'-' => (Phase.ExponentSign, 0),
            Phase.ExponentStart or Phase.ExponentSign when digit => (Phase.ExponentDigits, 1),
            Phase.ExponentDigits when digit && digits < NumberNode.MaxExponentDigits => (Phase.ExponentDigits, digits + 1),
            _ => null,
        };
        if (following is var (nextPhase, nextDigits))
        {
            output.Add(new MatchStack(new NumberFrame(integer, nextPhase, nextDigits), next));
        }
    }
}
