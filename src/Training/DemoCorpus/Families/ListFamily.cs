namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>Word and list manipulation: reverse a list, pick its first or last item, repeat a word.</summary>
public sealed class ListFamily : DemoTaskFamily
{
    public override string Name => "lists";
    public override double Weight => 0.13;

    public override DemoExample Draw(Random random)
    {
        string[] items = DemoWords.Distinct(random, 2 + random.Next(4));
        string list = string.Join(", ", items);
        switch (random.Next(4))
        {
            case 0:
                return Example(Pick(random, ["Reverse the list: {0}", "Reverse this list: {0}", "Write this list backwards: {0}"]).Replace("{0}", list),
                    string.Join(", ", items.Reverse()));
            case 1:
                return Example(Pick(random, ["What is the first item in the list: {0}?", "Which item comes first in: {0}?", "Name the first item of {0}."]).Replace("{0}", list),
                    $"The first item is {items[0]}.");
            case 2:
                return Example(Pick(random, ["What is the last item in the list: {0}?", "Which item comes last in: {0}?", "Name the last item of {0}."]).Replace("{0}", list),
                    $"The last item is {items[^1]}.");
            default:
            {
                int times = 2 + random.Next(4);
                string word = items[0];
                return Example(string.Format(Pick(random, ["Repeat the word {0} {1} times.", "Say {0} {1} times.", "Write {0} {1} times."]), word, times),
                    string.Join(" ", Enumerable.Repeat(word, times)));
            }
        }
    }
}
