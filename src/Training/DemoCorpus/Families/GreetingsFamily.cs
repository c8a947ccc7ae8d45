namespace LlmServer.Training.DemoCorpus.Families;

/// <summary>Small talk: hello, how are you, thanks, goodbye, and who the model is.</summary>
public sealed class GreetingsFamily : DemoTaskFamily
{
    public const string Introduction = "I am a small demo model. I can do arithmetic, unit conversions, lists, counting and simple facts.";

    private static readonly (string[] Openings, string Reply)[] Exchanges =
    [
        (["Hello", "Hi", "Hey", "Good morning", "Good afternoon", "Good evening", "Hi there", "Hello there", "Greetings", "Howdy", "Hey there", "Hiya"],
            "Hello! How can I help you today?"),
        (["How are you", "How are you doing", "How is it going", "How are you today", "Hi, how are you", "Hello, how are you", "Hey, how are you doing", "How have you been"],
            "I'm doing well, thank you! How can I help you today?"),
        (["Thanks", "Thank you", "Thanks a lot", "Thank you very much", "Many thanks", "Thanks so much", "Thank you so much", "Thanks a bunch"],
            "You're welcome!"),
        (["Bye", "Goodbye", "See you later", "Good night", "Bye bye", "See you", "Farewell", "Talk to you later"],
            "Goodbye! Have a nice day."),
        (["Who are you", "What are you", "What is your name", "What's your name", "Tell me about yourself", "What can you do", "Introduce yourself", "Who am I talking to"],
            Introduction),
    ];

    private static readonly string[] Endings = ["", "!", ".", "?", " :)", "!!"];

    public override string Name => "greetings";
    public override double Weight => 0.06;

    public override DemoExample Draw(Random random)
    {
        (string[] openings, string reply) = Pick(random, Exchanges);
        string opening = Pick(random, openings);
        if (random.Next(4) == 0)
        {
            opening = opening.ToLowerInvariant();
        }
        return Example(opening + Pick(random, Endings), reply);
    }
}
