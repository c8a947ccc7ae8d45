namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// A saved matcher state: one reference to immutable stacks, so saving and restoring cost nothing and a saved
/// state stays valid whatever the matcher does afterwards.
/// </summary>
public readonly struct MatcherState
{
    internal MatcherState(MatchStack[] stacks) => Stacks = stacks;

    internal MatchStack[] Stacks { get; }
}

/// <summary>
/// Matches the bytes of one reply against a <see cref="JsonGrammar"/>, one UTF-8 byte at a time. Where the
/// grammar is ambiguous (anyOf, enum values sharing a prefix, optional properties) every reading still possible
/// is followed, and one that dies is dropped, so the matcher refuses a byte only when no reading takes it.
/// Not thread-safe: one per request.
/// </summary>
public sealed class GrammarMatcher
{
    /// <summary>
    /// The most readings followed at once. Alternatives that overlap at every level of a recursive schema could
    /// otherwise double them with each level; past this a schema is refused at the byte that shows it, so one
    /// request's step costs a bounded time whatever schema it brought.
    /// </summary>
    public const int MaxReadings = 1024;

    private readonly List<MatchStack> _scratch = [];
    private MatchStack[] _stacks;

    public GrammarMatcher(JsonGrammar grammar) => _stacks = [new MatchStack(new StartFrame(grammar.Root), null)];

    /// <summary>Whether the bytes so far form a whole document that matches the grammar.</summary>
    public bool CanEnd
    {
        get
        {
            foreach (MatchStack stack in _stacks)
            {
                if (stack.CanEnd)
                {
                    return true;
                }
            }

            return false;
        }
    }

    /// <summary>The fewest bytes that complete the document from here, over every reading still possible.</summary>
    public int MinBytesToEnd
    {
        get
        {
            int min = int.MaxValue;
            foreach (MatchStack stack in _stacks)
            {
                min = Math.Min(min, stack.MinBytesToEnd);
            }

            return min;
        }
    }

    /// <summary>
    /// Whether the document is complete and known, without trying bytes, to take nothing more (a closed root
    /// object). A root number at its longest is complete too but reports false: there, no byte is accepted.
    /// </summary>
    public bool IsFinished => Array.TrueForAll(_stacks, static s => ReferenceEquals(s, MatchStack.Done));

    /// <summary>Whether the one reading left is inside a string, after a plain character (no escape or UTF-8 sequence open).</summary>
    internal bool IsInPlainString => _stacks.Length == 1 && ReferenceEquals(_stacks[0].Top, StringFrame.Plain);

    /// <summary>Accepts <paramref name="b"/> and advances, or refuses it and stays where it was.</summary>
    public bool TryAdvance(byte b)
    {
        _scratch.Clear();
        foreach (MatchStack stack in _stacks)
        {
            MatchStack.Feed(stack, b, _scratch);
        }

        if (_scratch.Count == 0)
        {
            return false;
        }

        if (_scratch.Count > MaxReadings)
        {
            throw new GrammarTooAmbiguousException(
                $"the output grammar is too ambiguous to follow (more than {MaxReadings} readings of the same text at once); make the anyOf alternatives of the schema differ earlier");
        }

        if (_scratch.Count == 1 && _stacks.Length == 1 && ReferenceEquals(_scratch[0], _stacks[0]))
        {
            return true; // the state did not change (a plain string character): keep the array, allocate nothing
        }

        _stacks = Distinct(_scratch);
        return true;
    }

    /// <summary>Accepts all of <paramref name="bytes"/>, or returns false at the first refused one (the state is then left after the bytes before it).</summary>
    public bool TryAdvance(ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            if (!TryAdvance(b))
            {
                return false;
            }
        }

        return true;
    }

    public MatcherState Save() => new(_stacks);

    public void Restore(MatcherState state) => _stacks = state.Stacks;

    private static MatchStack[] Distinct(List<MatchStack> stacks)
    {
        // Only the finished stack repeats in practice (several readings ending on the same byte); keep one.
        int done = 0;
        foreach (MatchStack stack in stacks)
        {
            if (ReferenceEquals(stack, MatchStack.Done))
            {
                done++;
            }
        }

        if (done <= 1)
        {
            return stacks.ToArray();
        }

        var result = new List<MatchStack>(stacks.Count - done + 1) { MatchStack.Done };
        foreach (MatchStack stack in stacks)
        {
            if (!ReferenceEquals(stack, MatchStack.Done))
            {
                result.Add(stack);
            }
        }

        return result.ToArray();
    }
}
