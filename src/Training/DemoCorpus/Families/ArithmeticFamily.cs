namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>Sums and differences of numbers below 100, and products up to 12 × 12.</summary>
/// <remarks>
/// The reply restates the question ("17 + 25 = 42"): the operands then sit right before the
/// digits the model has to work out. Sums and differences are split by their operands, so the
/// held-out ones test carrying, not recall; products are the times table, which is recalled, so
/// they are split by phrasing. The restated left side is also what the model passes to the calculator tool.
/// </remarks>
public sealed class ArithmeticFamily : DemoTaskFamily
{
    private static readonly string[] SumPrompts =
        ["What is {0} + {1}?", "What is {0} plus {1}?", "Calculate {0} + {1}.", "{0} + {1} = ?", "Add {0} and {1}.", "What's {0} + {1}?"];
    private static readonly string[] DifferencePrompts =
        ["What is {0} - {1}?", "What is {0} minus {1}?", "Calculate {0} - {1}.", "{0} - {1} = ?", "Subtract {1} from {0}.", "What's {0} - {1}?"];
    private static readonly string[] ProductPrompts =
        ["What is {0} * {1}?", "What is {0} times {1}?", "Calculate {0} * {1}.", "{0} * {1} = ?", "Multiply {0} by {1}.", "What's {0} * {1}?"];

    public override string Name => "arithmetic";
    public override double Weight => 0.34;

    public override DemoExample Draw(Random random)
    {
        switch (random.Next(5))
        {
            case 0 or 1:
            {
                int a = random.Next(100), b = random.Next(100);
                return Computed(Example($"sum {a} {b}", string.Format(Pick(random, SumPrompts), a, b), $"{a} + {b} = {a + b}"));
            }
            case 2 or 3:
            {
                int a = random.Next(100), b = random.Next(a + 1);
                return Computed(Example($"difference {a} {b}", string.Format(Pick(random, DifferencePrompts), a, b), $"{a} - {b} = {a - b}"));
            }
            default:
            {
                int a = random.Next(13), b = random.Next(13);
                string prompt = string.Format(Pick(random, ProductPrompts), a, b);
                return Computed(Example(prompt, $"{a} * {b} = {a * b}"));
            }
        }
    }

    /// <summary>
    /// A question beyond what the model can work out itself (sums and differences of three-digit numbers, products
    /// past the times table), asked only where the calculator is offered: there the tool's result is the only way to
    /// the answer, which is what teaches the model to copy it rather than to compute over it.
    /// </summary>
    public DemoExample DrawBeyondReach(Random random)
    {
        switch (random.Next(3))
        {
            case 0:
            {
                int a = random.Next(100, 1000), b = random.Next(100, 1000);
                return Computed(Example($"large sum {a} {b}", string.Format(Pick(random, SumPrompts), a, b), $"{a} + {b} = {a + b}"));
            }
            case 1:
            {
                int a = random.Next(100, 1000), b = random.Next(a + 1);
                return Computed(Example($"large difference {a} {b}", string.Format(Pick(random, DifferencePrompts), a, b), $"{a} - {b} = {a - b}"));
            }
            default:
            {
                int a = random.Next(13, 100), b = random.Next(13, 100);
                return Computed(Example($"large product {a} {b}", string.Format(Pick(random, ProductPrompts), a, b), $"{a} * {b} = {a * b}"));
            }
        }
    }

    /// <summary>The example with its expression: the reply's left side ("17 + 25" of "17 + 25 = 42").</summary>
    private static DemoExample Computed(DemoExample example) =>
        example with { ToolExpression = example.Reply[..example.Reply.IndexOf(" = ", StringComparison.Ordinal)] };
}
