using System.Text;

namespace LlmServer.Training.Tests.Tokenization;

/// <summary>
/// Repetitive English-like documents from a fixed seed: a small vocabulary of real words, so BPE has
/// frequent words to learn, plus numbers, punctuation and the odd non-ASCII word. Generated rather than
/// checked in so that the size can be chosen per test.
/// </summary>
internal static class SyntheticEnglishCorpus
{
    private static readonly string[] Subjects =
        ["the model", "a small network", "the tokenizer", "our server", "every request", "the scheduler", "this café", "the old teacher"];

    private static readonly string[] Verbs =
        ["reads", "learns", "writes", "predicts", "counts", "remembers", "schedules", "encodes"];

    private static readonly string[] Objects =
        ["the next token", "long documents", "simple arithmetic", "a few thousand words", "its own vocabulary",
         "the training corpus", "every sentence twice", "numbers like these"];

    private static readonly string[] Endings =
        [".", ".", ".", "!", "?", ", and then it rests.", " quickly.", " without any help."];

    /// <summary>Documents of a few sentences each until about <paramref name="approximateChars"/> characters.</summary>
    public static List<string> Generate(int approximateChars, int seed = 1234)
    {
        var random = new Random(seed);
        var documents = new List<string>();
        int total = 0;
        while (total < approximateChars)
        {
            var document = new StringBuilder();
            int sentences = random.Next(2, 8);
            for (int s = 0; s < sentences; s++)
            {
                string subject = Subjects[random.Next(Subjects.Length)];
                document.Append(s == 0 ? "" : " ")
                    .Append(char.ToUpperInvariant(subject[0])).Append(subject.AsSpan(1))
                    .Append(' ').Append(Verbs[random.Next(Verbs.Length)])
                    .Append(' ').Append(Objects[random.Next(Objects.Length)]);
                if (random.Next(4) == 0)
                {
                    document.Append(" in ").Append(random.Next(1990, 2030));
                }

                document.Append(Endings[random.Next(Endings.Length)]);
            }

            documents.Add(document.ToString());
            total += document.Length;
        }

        return documents;
    }
}
