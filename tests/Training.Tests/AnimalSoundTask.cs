using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Data;
using static TorchSharp.torch;

namespace LlmServer.Training.Tests;

/// <summary>
/// A task the random fixture model cannot do and a fine-tune can learn in seconds: a prompt of
/// filler words that mentions "cat" answers " meow", one that mentions "dog" answers " woof".
/// Held-out prompts use filler words training never shows, so passing means the model looks
/// for the animal rather than memorizing prompts.
/// </summary>
internal static class AnimalSoundTask
{
    public const string Model = "gpt2-random-2l-64d";

    private static readonly Lazy<(string[] Training, string[] HeldOut)> Fillers = new(ChooseFillers);

    private static readonly Lazy<Gpt2Tokenizer> LazyTokenizer = new(() => Gpt2Tokenizer.Load(TestFixtures.ModelDirectory(Model)));

    public static Gpt2Tokenizer Tokenizer => LazyTokenizer.Value;

    public static string ModelDirectory => TestFixtures.ModelDirectory(Model);

    public static ChatPromptFormatter Formatter => ChatPromptFormatter.Load(ModelDirectory, Tokenizer);

    /// <summary>(prompt, completion) pairs drawn with <paramref name="seed"/>; half cats, half dogs.</summary>
    public static List<(string Prompt, string Completion)> Pairs(int count, bool heldOut, int seed)
    {
        string[] fillers = heldOut ? Fillers.Value.HeldOut : Fillers.Value.Training;
        var random = new Random(seed);
        var pairs = new List<(string, string)>();
        for (int i = 0; i < count; i++)
        {
            bool cat = i % 2 == 0;
            var words = Enumerable.Range(0, 3).Select(_ => fillers[random.Next(fillers.Length)]).ToList();
            words.Insert(random.Next(words.Count + 1), cat ? "cat" : "dog");
            pairs.Add((string.Join(' ', words) + " says", cat ? " meow" : " woof"));
        }
        return pairs;
    }

    public static TrainingDataset Dataset(int count, bool heldOut, int seed)
    {
        var encoder = new TrainingExampleEncoder(Tokenizer, Formatter);
        return TrainingDataset.FromExamples(Pairs(count, heldOut, seed).Select(p => encoder.EncodePromptCompletion(p.Prompt, p.Completion)), maxLength: 128);
    }

    /// <summary>Share of held-out prompts whose greedy continuation is exactly the expected completion.</summary>
    public static double HeldOutAccuracy(Gpt2Model model, LoraAdapter? adapter, int count = 24)
    {
        int right = 0;
        var pairs = Pairs(count, heldOut: true, seed: 7);
        foreach ((string prompt, string completion) in pairs)
        {
            int[] expected = Tokenizer.Encode(completion).ToArray();
            if (Greedy(model, adapter, Tokenizer.Encode(prompt).ToArray(), expected.Length).SequenceEqual(expected))
            {
                right++;
            }
        }
        return (double)right / pairs.Count;
    }

    public static int[] Greedy(Gpt2Model model, LoraAdapter? adapter, int[] prompt, int tokens)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        using AdapterRouting? routing = adapter is null ? null : AdapterRouting.ForAllRows(adapter);
        var ids = prompt.Select(i => (long)i).ToList();
        var generated = new List<int>();
        for (int t = 0; t < tokens; t++)
        {
            Tensor input = tensor(ids.ToArray(), ScalarType.Int64).unsqueeze(0);        // (1, T)
            Tensor logits = model.ForwardTraining(input, routing);                       // (1, T, V)
            int next = (int)logits[0, -1].argmax().item<long>();
            generated.Add(next);
            ids.Add(next);
        }
        return generated.ToArray();
    }

    /// <summary>
    /// Lower-case words that are one GPT-2 token with their leading space, alternately for training
    /// and for held-out prompts. Hundreds of them, so that the model must learn to ignore fillers
    /// in general instead of a few it has seen.
    /// </summary>
    private static (string[] Training, string[] HeldOut) ChooseFillers()
    {
        var words = new List<string>();
        for (int id = 0; id < Tokenizer.EndOfTextId && words.Count < FillerCount; id++)
        {
            string text = Tokenizer.TokenText(id);
            if (text.Length is >= 4 and <= 9 && text[0] == ' ' && text.Skip(1).All(char.IsAsciiLetterLower)
                && text is not (" cat" or " dog" or " says" or " meow" or " woof"))
            {
                words.Add(text[1..]);
            }
        }
        return (words.Where((_, i) => i % 2 == 0).ToArray(), words.Where((_, i) => i % 2 == 1).ToArray());
    }

    private const int FillerCount = 600;
}
