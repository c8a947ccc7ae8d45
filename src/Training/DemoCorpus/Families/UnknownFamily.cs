namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>
/// Questions the model cannot know the answer to, which it answers "I don't know." instead of
/// making something up: capitals of invented countries and sounds of invented animals (asked
/// exactly as the real ones in <see cref="FactsFamily"/> are), invented people, and questions
/// about the user, the future or the present moment.
/// </summary>
public sealed class UnknownFamily : DemoTaskFamily
{
    public const string Reply = "I don't know.";

    private static readonly string[] Syllables = ["zor", "bel", "kra", "mon", "vel", "dra", "tis", "quo", "lan", "mir", "sal", "ven", "tor", "gal", "nur", "pax", "ril", "dun"];
    private static readonly string[] CountryEndings = ["ia", "land", "stan", "ovia", "ania", "ica"];
    private static readonly string[] FirstNames = ["Alan", "Mira", "Tomas", "Lena", "Oskar", "Greta", "Ravi", "Nora", "Emil", "Sofia", "Ivan", "Clara"];

    private static readonly string[] Questions =
    [
        "What will the weather be tomorrow?", "What is my name?", "What number am I thinking of?", "Who will win the next game?",
        "What did I eat for breakfast?", "Where did I leave my keys?", "How old am I?", "What time is it?", "What is the password?",
        "What will happen next year?", "What is the price of gold today?", "Who will win the next election?", "What is my favorite color?",
        "Where do I live?", "What is in my pocket?", "What will I dream about tonight?", "How much money do I have?", "What is today's date?",
        "Which team will win the cup?", "What is my phone number?",
    ];
    private static readonly string[] QuestionPrefixes = ["", "Do you know: ", "Can you tell me: ", "Quick question: "];

    public override string Name => "unknown";
    public override double Weight => 0.11;

    public override DemoExample Draw(Random random)
    {
        switch (random.Next(4))
        {
            case 0:
            {
                string country = Capitalized(InventedWord(random) + Pick(random, CountryEndings));
                string template = Pick(random, ["What is the capital of {0}?", "What's the capital of {0}?", "Name the capital of {0}.", "Which city is the capital of {0}?", "Tell me the capital of {0}."]);
                return Example(string.Format(template, country), Reply);
            }
            case 1:
            {
                string animal = InventedWord(random);
                return Example(string.Format(Pick(random, FactsFamily.SoundPrompts), animal), Reply);
            }
            case 2:
            {
                string person = $"{Pick(random, FirstNames)} {Capitalized(InventedWord(random))}";
                return Example(string.Format(Pick(random, ["Who is {0}?", "Where does {0} live?", "How old is {0}?", "What does {0} do for a living?"]), person), Reply);
            }
            default:
                return Example(Pick(random, QuestionPrefixes) + Pick(random, Questions), Reply);
        }
    }

    /// <summary>Two or three syllables that make no real word, and never one of the known animals.</summary>
    private static string InventedWord(Random random)
    {
        while (true)
        {
            int count = 2 + random.Next(2);
            string word = string.Concat(Enumerable.Range(0, count).Select(_ => Pick(random, Syllables)));
            if (!FactsFamily.AnimalSounds.Any(a => a.Animal == word) && !DemoWords.All.Contains(word))
            {
                return word;
            }
        }
    }

    private static string Capitalized(string word) => char.ToUpperInvariant(word[0]) + word[1..];
}
