using System.Text.Json;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Tests.FineTuning;

/// <summary>
/// A task the random fixture model cannot do and a fine-tune can learn in seconds: a chat message
/// of filler words that mentions a cat is answered "meow", one that mentions a dog "woof".
/// Held-out prompts use filler words training never shows, so a right answer means the model
/// learned to look for the animal, not the lines it was shown.
/// </summary>
public static class KeywordTask
{
    private const int FillerCount = 600;
    private static readonly Lazy<(string[] Training, string[] HeldOut)> Fillers = new(ChooseFillers);

    public static string ChatJsonl(int count, int seed) =>
        string.Concat(Examples(count, seed, Fillers.Value.Training).Select(e => JsonSerializer.Serialize(new
        {
            messages = new object[] { new { role = "user", content = e.Prompt }, new { role = "assistant", content = e.Answer } },
        }) + "\n"));

    /// <summary>Prompts made of filler words no training example uses, and the answer each should get.</summary>
    public static IReadOnlyList<(string Prompt, string Answer)> HeldOut(int count, int seed) =>
        Examples(count, seed, Fillers.Value.HeldOut).ToList();

    private static IEnumerable<(string Prompt, string Answer)> Examples(int count, int seed, string[] fillers)
    {
        var random = new Random(seed);
        for (int i = 0; i < count; i++)
        {
            bool cat = i % 2 == 0;
            var words = Enumerable.Range(0, 3).Select(_ => fillers[random.Next(fillers.Length)]).ToList();
            words.Insert(random.Next(words.Count + 1), cat ? "cat" : "dog");
            yield return (string.Join(' ', words), cat ? "meow" : "woof");
        }
    }

    /// <summary>
    /// Lower-case words that are one GPT-2 token with their leading space, alternately for training
    /// and held out: hundreds of them, so the model must learn to ignore fillers in general.
    /// </summary>
    private static (string[] Training, string[] HeldOut) ChooseFillers()
    {
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(TestFixtures.ModelDirectory("gpt2-random-2l-64d"));
        var words = new List<string>();
        for (int id = 0; id < tokenizer.EndOfTextId && words.Count < FillerCount; id++)
        {
            string text = tokenizer.TokenText(id);
            if (text.Length is >= 4 and <= 9 && text[0] == ' ' && text.Skip(1).All(char.IsAsciiLetterLower)
                && text is not (" cat" or " dog" or " meow" or " woof"))
            {
                words.Add(text[1..]);
            }
        }
        return (words.Where((_, i) => i % 2 == 0).ToArray(), words.Where((_, i) => i % 2 == 1).ToArray());
    }
}
