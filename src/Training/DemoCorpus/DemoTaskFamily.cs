namespace LlmServer.Training.DemoCorpus;

/// <summary>A kind of question the demo model learns, drawn at random from a space of variants.</summary>
public abstract class DemoTaskFamily
{
    public abstract string Name { get; }

    /// <summary>This family's share of the training examples, relative to the other families'.</summary>
    public abstract double Weight { get; }

    public abstract DemoExample Draw(Random random);

    protected DemoExample Example(string partitionKey, string prompt, string reply) => new(Name, partitionKey, prompt, reply);

    protected DemoExample Example(string prompt, string reply) => new(Name, prompt, prompt, reply);

    protected static T Pick<T>(Random random, IReadOnlyList<T> choices) => choices[random.Next(choices.Count)];

    protected static string Plural(int count, string singular, string plural) => count == 1 ? singular : plural;
}
