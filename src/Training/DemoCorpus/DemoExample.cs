namespace LlmServer.Training.DemoCorpus;

/// <summary>One question and the one reply the demo model should give to it.</summary>
/// <param name="Family">The task family, which the held-out accuracy is reported by.</param>
/// <param name="PartitionKey">
/// What decides the split: two examples with the same key are always on the same side. Arithmetic
/// keys on its operands, so a held-out sum is one training never showed under any phrasing.
/// </param>
public sealed record DemoExample(string Family, string PartitionKey, string Prompt, string Reply)
{
    /// <summary>What the question asks to compute, for the calculator (<see cref="DemoCalculator"/>); null where it asks nothing of the kind.</summary>
    public string? ToolExpression { get; init; }

    /// <summary>Whether the conversation offers the calculator tool (then an arithmetic question is answered by calling it).</summary>
    public bool OffersTool { get; init; }
}
