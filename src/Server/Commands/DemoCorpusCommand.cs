using LlmServer.Host;
using LlmServer.Training.DemoCorpus;

namespace LlmServer.Commands;

/// <summary><c>llmserver demo-corpus --out DIR</c>: writes the demo model's generated training, validation and held-out sets.</summary>
public static class DemoCorpusCommand
{
    public const string Help = """
        Usage: llmserver demo-corpus --out DIR [--examples N (150000)] [--validation-examples N (1000)] [--held-out-per-family N (100)] [--seed N (1)]
                                  [--tool-share F (0)]

        Writes chat examples from the demo task families (arithmetic, unit conversions, lists, counting, facts,
        greetings, questions it cannot know) as OpenAI fine-tuning JSONL: DIR/train.jsonl, DIR/validation.jsonl,
        DIR/heldout.jsonl (with each line's "family", for `llmserver eval`), and DIR/chat_template.jinja.
        The same seed writes the same files; held-out questions are never in train.jsonl.
        --tool-share offers the calculator tool in that share of the training and validation conversations: there an
        arithmetic question is answered by a call, the tool's result and the reply, in OpenAI's function-calling format;
        half of those arithmetic questions are swapped for ones past the model's own reach (three-digit sums and
        differences, two-digit products), which only copying the tool's result answers.
        """;

    public static int Run(IReadOnlyList<string> args) =>
        CommandArguments.RunCommand(args, Help, ["--out", "--examples", "--validation-examples", "--held-out-per-family", "--seed", "--tool-share"], [], Write);

    private static int Write(CommandArguments arguments)
    {
        string output = arguments.Required("--out");
        var options = new DemoCorpusOptions
        {
            TrainingExamples = Positive(arguments.Int("--examples", 150_000), "--examples"),
            ValidationExamples = Positive(arguments.Int("--validation-examples", 1_000), "--validation-examples"),
            HeldOutPerFamily = Positive(arguments.Int("--held-out-per-family", 100), "--held-out-per-family"),
            Seed = arguments.Int("--seed", 1),
            ToolShare = Share(arguments.Double("--tool-share", 0), "--tool-share"),
        };
        (int training, int validation, int heldOut) = DemoCorpusGenerator.Write(output, options);
        Console.WriteLine($"wrote {training:N0} training, {validation:N0} validation and {heldOut:N0} held-out examples "
            + $"({DemoCorpusGenerator.Families.Count} families) to {output}");
        return 0;
    }

    private static double Share(double value, string flag) =>
        value is >= 0 and <= 1 ? value : throw new CommandLineException($"{flag} must be between 0 and 1, got {value}");

    private static int Positive(int value, string flag) =>
        value > 0 ? value : throw new CommandLineException($"{flag} must be positive, got {value}");
}
