namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// Any JSON string: escapes as RFC 8259 lists them, <c>\u</c> surrogates only in high-low pairs, and raw bytes
/// only as well-formed UTF-8 (no overlong forms, no encoded surrogates, nothing above U+10FFFF), so whatever the
/// model emits decodes to a valid string.
/// </summary>
internal sealed class StringNode : GrammarNode
{
    public static readonly StringNode Instance = new();

    private StringNode()
        : base(minLength: 2)
    {
    }

    public override void Start(byte b, MatchStack? next, List<MatchStack> output)
    {
        if (b == (byte)'"')
        {
            output.Add(new MatchStack(StringFrame.Plain, next));
        }
    }
}

internal sealed class StringFrame : MatchFrame
{
    private enum Phase : byte
    {
        Plain,
        Escape,
        Hex,
        // After a high surrogate's \uD8xx-\uDBxx: a low surrogate's '\', then its 'u', must follow.
        LowBackslash,
        LowU,
        Utf8,
    }

    public static readonly StringFrame Plain = new(Phase.Plain);
    private static readonly StringFrame EscapeFrame = new(Phase.Escape);
    private static readonly StringFrame LowBackslashFrame = new(Phase.LowBackslash);
    private static readonly StringFrame LowUFrame = new(Phase.LowU);

    // Hex: digits read and their value so far, and whether they must form a low surrogate.
    // Utf8: continuation bytes still due, and the range the next one must fall in.
    private readonly Phase _phase;
    private readonly int _count;
    private readonly int _value;
    private readonly bool _low;
    private readonly byte _min;
    private readonly byte _max;

    private StringFrame(Phase phase, int count = 0, int value = 0, bool low = false, byte min = 0, byte max = 0)
    {
        _phase = phase;
        _count = count;
        _value = value;
        _low = low;
        _min = min;
        _max = max;
    }

    /// <summary>The most <see cref="MinRemaining"/> can exceed a plain string's: a high surrogate's escape begun.</summary>
    public const int MaxExtraToClose = 8;

    /// <summary>The closing quote, after whatever the escape or UTF-8 sequence in progress still needs.</summary>
    public override int MinRemaining => _phase switch
    {
        Phase.Plain => 1,
        Phase.Escape => 2,
        // A high surrogate's digits commit the string to its low surrogate's six bytes.
        Phase.Hex => 4 - _count + (IsHighSurrogatePrefix ? 6 : 0) + 1,
        Phase.LowBackslash => 7,
        Phase.LowU => 6,
        _ => _count + 1,
    };

    private bool IsHighSurrogatePrefix => !_low && _count >= 2 && (_value >> ((_count - 2) * 4)) is >= 0xD8 and <= 0xDB;

    public override void Step(byte b, MatchStack? next, List<MatchStack> output)
    {
        StringFrame? following = _phase switch
        {
            Phase.Plain => AfterPlain(b, next, output),
            Phase.Escape => b switch
            {
                (byte)'"' or (byte)'\\' or (byte)'/' or (byte)'b' or (byte)'f' or (byte)'n' or (byte)'r' or (byte)'t' => Plain,
                (byte)'u' => new StringFrame(Phase.Hex),
                _ => null,
            },
            Phase.Hex => AfterHexDigit(b),
            Phase.LowBackslash => b == (byte)'\\' ? LowUFrame : null,
            Phase.LowU => b == (byte)'u' ? new StringFrame(Phase.Hex, low: true) : null,
            Phase.Utf8 => b >= _min && b <= _max
                ? _count == 1 ? Plain : new StringFrame(Phase.Utf8, _count - 1, min: 0x80, max: 0xBF)
                : null,
            _ => null,
        };
        if (following is not null)
        {
            output.Add(new MatchStack(following, next));
        }
    }

    /// <summary>Whether <paramref name="b"/> is a character that keeps a string in its plain state (printable ASCII but '"' and '\\').</summary>
    public static bool KeepsPlain(byte b) => b is >= 0x20 and < 0x80 and not (byte)'"' and not (byte)'\\';

    private static StringFrame? AfterPlain(byte b, MatchStack? next, List<MatchStack> output)
    {
        switch (b)
        {
            case (byte)'"':
                Complete(next, output);
                return null;
            case (byte)'\\':
                return EscapeFrame;
            case < 0x20:
                return null;
            case < 0x80:
                return Plain;
        }

        // The lead byte fixes how many continuation bytes follow and, for E0, ED, F0 and F4, narrows the
        // first one to exclude overlong forms, UTF-16 surrogates and code points above U+10FFFF.
        return b switch
        {
            >= 0xC2 and <= 0xDF => new StringFrame(Phase.Utf8, 1, min: 0x80, max: 0xBF),
            0xE0 => new StringFrame(Phase.Utf8, 2, min: 0xA0, max: 0xBF),
            0xED => new StringFrame(Phase.Utf8, 2, min: 0x80, max: 0x9F),
            >= 0xE1 and <= 0xEF => new StringFrame(Phase.Utf8, 2, min: 0x80, max: 0xBF),
            0xF0 => new StringFrame(Phase.Utf8, 3, min: 0x90, max: 0xBF),
            >= 0xF1 and <= 0xF3 => new StringFrame(Phase.Utf8, 3, min: 0x80, max: 0xBF),
            0xF4 => new StringFrame(Phase.Utf8, 3, min: 0x80, max: 0x8F),
            _ => null,
        };
    }

    private StringFrame? AfterHexDigit(byte b)
    {
        int digit = b switch
        {
            >= (byte)'0' and <= (byte)'9' => b - '0',
            >= (byte)'a' and <= (byte)'f' => b - 'a' + 10,
            >= (byte)'A' and <= (byte)'F' => b - 'A' + 10,
            _ => -1,
        };
        if (digit < 0)
        {
            return null;
        }

        int count = _count + 1;
        int value = (_value << 4) | digit;
        // The first two digits decide whether this is a surrogate, so a lone or misplaced one is refused there.
        if (count == 1 && _low && value != 0xD)
        {
            return null;
        }

        if (count == 2)
        {
            bool high = value is >= 0xD8 and <= 0xDB;
            bool low = value is >= 0xDC and <= 0xDF;
            if (low != _low || (high && _low))
            {
                return null;
            }
        }

        if (count < 4)
        {
            return new StringFrame(Phase.Hex, count, value, _low);
        }

        return value is >= 0xD800 and <= 0xDBFF ? LowBackslashFrame : Plain;
    }
}
