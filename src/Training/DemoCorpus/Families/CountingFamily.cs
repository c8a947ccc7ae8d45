namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>Counting: a range of numbers, the number before or after one, the items in a list.</summary>
public sealed class CountingFamily : DemoTaskFamily
{
    public override string Name => "counting";
    public override double Weight => 0.12;

    public override DemoExample Draw(Random random)
    {
        switch (random.Next(4))
        {
            case 0:
            {
                int from = random.Next(95), to = from + 2 + random.Next(5);
                return Example(string.Format(Pick(random, ["Count from {0} to {1}.", "Count up from {0} to {1}.", "List the numbers from {0} to {1}."]), from, to),
                    string.Join(", ", Enumerable.Range(from, to - from + 1)));
            }
            case 1:
            {
                int n = random.Next(999);
                return Example(string.Format(Pick(random, ["What number comes after {0}?", "What comes after {0}?", "Which number follows {0}?"]), n),
                    $"The number after {n} is {n + 1}.");
            }
            case 2:
            {
                int n = 1 + random.Next(999);
                return Example(string.Format(Pick(random, ["What number comes before {0}?", "What comes before {0}?", "Which number is just before {0}?"]), n),
                    $"The number before {n} is {n - 1}.");
            }
            default:
            {
                string[] items = DemoWords.Distinct(random, 1 + random.Next(8));
                string list = string.Join(", ", items);
                string reply = items.Length == 1 ? "There is 1 item." : $"There are {items.Length} items.";
                return Example(Pick(random, ["How many items are in this list: {0}?", "Count the items: {0}", "How many things are in: {0}?"]).Replace("{0}", list), reply);
            }
        }
    }
}
