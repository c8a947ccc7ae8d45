namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>Simple facts from fixed tables (capitals, opposites, animal sounds, legs, colours), each asked several ways.</summary>
/// <remarks>
/// Split by phrasing: a held-out question asks a fact training taught, in words training never
/// paired with it. The reply does not depend on the phrasing.
/// </remarks>
public sealed class FactsFamily : DemoTaskFamily
{
    public static readonly (string Country, string Capital)[] Capitals =
    [
        ("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"), ("Spain", "Madrid"), ("Japan", "Tokyo"),
        ("China", "Beijing"), ("India", "New Delhi"), ("Egypt", "Cairo"), ("Canada", "Ottawa"), ("Mexico", "Mexico City"),
        ("Brazil", "Brasilia"), ("Russia", "Moscow"), ("Kenya", "Nairobi"), ("Greece", "Athens"), ("Norway", "Oslo"),
        ("Sweden", "Stockholm"), ("Poland", "Warsaw"), ("Portugal", "Lisbon"), ("Ireland", "Dublin"), ("Austria", "Vienna"),
        ("Peru", "Lima"), ("Chile", "Santiago"), ("Cuba", "Havana"), ("Thailand", "Bangkok"), ("Turkey", "Ankara"),
        ("Argentina", "Buenos Aires"), ("Australia", "Canberra"), ("Finland", "Helsinki"), ("Denmark", "Copenhagen"), ("Hungary", "Budapest"),
    ];

    private static readonly (string Word, string Opposite)[] Opposites =
    [
        ("hot", "cold"), ("big", "small"), ("up", "down"), ("fast", "slow"), ("happy", "sad"), ("light", "dark"),
        ("old", "young"), ("open", "closed"), ("full", "empty"), ("hard", "soft"), ("early", "late"), ("high", "low"),
        ("long", "short"), ("rich", "poor"), ("wet", "dry"), ("loud", "quiet"), ("strong", "weak"), ("day", "night"),
        ("left", "right"), ("in", "out"), ("win", "lose"), ("near", "far"), ("thick", "thin"), ("clean", "dirty"),
    ];

    public static readonly (string Animal, string Sound)[] AnimalSounds =
    [
        ("cow", "moo"), ("dog", "woof"), ("cat", "meow"), ("duck", "quack"), ("sheep", "baa"), ("pig", "oink"),
        ("horse", "neigh"), ("lion", "roar"), ("owl", "hoot"), ("frog", "ribbit"), ("snake", "hiss"), ("bee", "buzz"),
        ("mouse", "squeak"), ("crow", "caw"), ("donkey", "hee-haw"), ("wolf", "howl"),
    ];

    private static readonly (string Animal, int Legs)[] Legs =
    [
        ("spider", 8), ("dog", 4), ("cat", 4), ("bird", 2), ("ant", 6), ("horse", 4), ("chicken", 2), ("bee", 6),
        ("cow", 4), ("duck", 2), ("beetle", 6), ("elephant", 4), ("human", 2), ("fly", 6), ("scorpion", 8), ("goat", 4),
    ];

    /// <summary>What is asked about ("the sky", "a banana") and its colour.</summary>
    private static readonly (string Thing, string Colour)[] Colours =
    [
        ("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("a banana", "yellow"), ("coal", "black"),
        ("a tomato", "red"), ("a carrot", "orange"), ("a lemon", "yellow"), ("milk", "white"), ("the sun", "yellow"),
        ("a strawberry", "red"), ("chocolate", "brown"), ("a frog", "green"), ("the sea", "blue"), ("a crow", "black"),
    ];

    private static readonly string[] CapitalPrompts =
        ["What is the capital of {0}?", "What's the capital of {0}?", "Name the capital of {0}.", "Which city is the capital of {0}?", "Tell me the capital of {0}."];
    private static readonly string[] OppositePrompts =
        ["What is the opposite of {0}?", "What's the opposite of {0}?", "Give me the opposite of {0}.", "Name the opposite of {0}.", "Tell me the opposite of {0}."];
    public static readonly string[] SoundPrompts =
        ["What sound does a {0} make?", "What does a {0} say?", "What noise does a {0} make?", "How does a {0} sound?", "Which sound does a {0} make?"];
    private static readonly string[] LegPrompts =
        ["How many legs does a {0} have?", "How many legs has a {0} got?", "Count the legs of a {0}.", "Tell me how many legs a {0} has.", "A {0} has how many legs?"];
    private static readonly string[] ColourPrompts =
        ["What color is {0}?", "What colour is {0}?", "Tell me the color of {0}.", "Which color is {0}?", "Name the color of {0}."];

    public override string Name => "facts";
    public override double Weight => 0.12;

    public override DemoExample Draw(Random random)
    {
        switch (random.Next(5))
        {
            case 0:
            {
                (string country, string capital) = Pick(random, Capitals);
                return Example(string.Format(Pick(random, CapitalPrompts), country), $"The capital of {country} is {capital}.");
            }
            case 1:
            {
                (string word, string opposite) = Pick(random, Opposites);
                if (random.Next(2) == 0)
                {
                    (word, opposite) = (opposite, word);
                }
                return Example(string.Format(Pick(random, OppositePrompts), word), $"The opposite of {word} is {opposite}.");
            }
            case 2:
            {
                (string animal, string sound) = Pick(random, AnimalSounds);
                return Example(string.Format(Pick(random, SoundPrompts), animal), $"A {animal} says {sound}.");
            }
            case 3:
            {
                (string animal, int legs) = Pick(random, Legs);
                return Example(string.Format(Pick(random, LegPrompts), animal), $"A {animal} has {legs} legs.");
            }
            default:
            {
                (string thing, string colour) = Pick(random, Colours);
                return Example(string.Format(Pick(random, ColourPrompts), thing), $"{char.ToUpperInvariant(thing[0])}{thing[1..]} is {colour}.");
            }
        }
    }
}
