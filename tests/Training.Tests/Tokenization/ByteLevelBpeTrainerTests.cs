using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Tokenization;

namespace LlmServer.Training.Tests.Tokenization;

public sealed class ByteLevelBpeTrainerTests : IDisposable
{
    private static readonly List<string> Corpus = SyntheticEnglishCorpus.Generate(approximateChars: 200_000);

    private readonly string _root = Directory.CreateTempSubdirectory("bpe-trainer-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Theory]
    [InlineData("The model learns the next token.")]
    [InlineData("Ünïcödé, 中文字符, Ελληνικά and кириллица the tokenizer never saw")]
    [InlineData("emoji 🦙🚀👩‍👩‍👧 and a lone astral letter 𝐀's")]
    [InlineData("whitespace   runs\t\tand\n\n\nnewlines   \r\n  trailing   ")]
    [InlineData("first document<|endoftext|>second document<|endoftext|>")]
    [InlineData("numbers 12345 and 3.14159, years 1999-2024")]
    [InlineData("")]
    public void Trained_files_load_in_Gpt2Tokenizer_and_round_trip(string text)
    {
        Gpt2Tokenizer tokenizer = TrainAndLoad(new ByteLevelBpeOptions { VocabularySize = 600 });

        IReadOnlyList<int> ids = tokenizer.Encode(text);

        Assert.Equal(text, tokenizer.Decode(ids));
        Assert.All(ids, id => Assert.InRange(id, 0, 599));
    }

    [Fact]
    public void End_of_text_in_documents_is_the_special_token_and_never_part_of_a_merge()
    {
        string[] documents = [.. Enumerable.Repeat("hello world<|endoftext|>", 50)];
        string directory = Path.Combine(_root, "eot");
        ByteLevelBpeVocabulary vocabulary = ByteLevelBpeTrainer.Train(documents, new ByteLevelBpeOptions { VocabularySize = 400 });
        vocabulary.Save(directory);
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(directory);

        Assert.DoesNotContain(vocabulary.Tokens.Skip(256).SkipLast(1), token => token.Contains('|') || token.Contains("endoftext"));
        Assert.Equal(vocabulary.EndOfTextId, tokenizer.EndOfTextId);
        Assert.Equal([tokenizer.Encode("hello").Single(), tokenizer.Encode(" world").Single(), tokenizer.EndOfTextId],
            tokenizer.Encode("hello world<|endoftext|>"));
    }

    [Fact]
    public void Vocab_json_has_exactly_the_requested_ids_with_end_of_text_last_and_Gpt2s_byte_ids()
    {
        // The corpus has merges to spare at 400 ids (it runs out of frequent pairs near 450).
        string directory = TrainAndSave(new ByteLevelBpeOptions { VocabularySize = 400 });

        Dictionary<string, int> vocab = ReadVocab(directory);
        Assert.Equal(400, vocab.Count);
        Assert.Equal(Enumerable.Range(0, 400), vocab.Values.Order());
        Assert.Equal(399, vocab["<|endoftext|>"]);

        // Ids 0..255 are the byte tokens exactly as OpenAI's GPT-2 vocab.json numbers them.
        Dictionary<string, int> gpt2 = ReadVocab(TestFixtures.TokenizerDirectory);
        Assert.Equal(
            gpt2.Where(entry => entry.Value < 256).OrderBy(entry => entry.Value),
            vocab.Where(entry => entry.Value < 256).OrderBy(entry => entry.Value));
    }

    [Fact]
    public void Files_are_laid_out_like_Gpt2s()
    {
        string directory = TrainAndSave(new ByteLevelBpeOptions { VocabularySize = 300 });

        string vocabText = File.ReadAllText(Path.Combine(directory, "vocab.json"));
        Assert.StartsWith("{\"!\": 0, \"\\\"\": 1, \"#\": 2,", vocabText);
        Assert.EndsWith(", \"<|endoftext|>\": 299}", vocabText);
        Assert.Contains("\"Ā\": 188", vocabText);   // non-ASCII written as is, as in GPT-2's file

        string[] mergeLines = File.ReadAllLines(Path.Combine(directory, "merges.txt"));
        Assert.Equal("#version: 0.2", mergeLines[0]);
        Dictionary<string, int> vocab = ReadVocab(directory);
        Assert.Equal(300 - 257, mergeLines.Length - 1);
        // As in GPT-2's files, merge i (0-based) creates token 256 + i.
        Assert.All(mergeLines.Skip(1).Select((line, rank) => (line, rank)), merge =>
        {
            string[] sides = merge.line.Split(' ');
            Assert.Equal(2, sides.Length);
            Assert.Equal(256 + merge.rank, vocab[sides[0] + sides[1]]);
        });
        Assert.False(File.Exists(Path.Combine(directory, "tokenizer_config.json")));
    }

    [Fact]
    public void With_SplitDigits_numbers_stay_one_token_per_digit()
    {
        string[] documents = [.. Enumerable.Range(0, 300).Select(i => $"In 2024 we counted 12345 items, then {i * 7919} more.")];
        string directory = Path.Combine(_root, "split-digits");
        ByteLevelBpeVocabulary vocabulary = ByteLevelBpeTrainer.Train(documents, new ByteLevelBpeOptions { VocabularySize = 500 });
        vocabulary.Save(directory);
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(directory);

        Assert.All(vocabulary.Tokens.Skip(256).SkipLast(1), token => Assert.DoesNotContain(token, char.IsAsciiDigit));
        Assert.Equal(["Ġ", "1", "2", "3", "4", "5"], tokenizer.Encode(" 12345").Select(id => TokenString(vocabulary, id)));
        Assert.Equal(5, tokenizer.Encode("12345").Count);
        // Merges next to numbers are still learned: the words around them are single tokens.
        Assert.Single(tokenizer.Encode(" counted"));
    }

    [Fact]
    public void Without_SplitDigits_a_frequent_number_becomes_one_token()
    {
        string[] documents = [.. Enumerable.Range(0, 300).Select(i => $"In 2024 we counted 12345 items, then {i * 7919} more.")];
        string directory = Path.Combine(_root, "whole-numbers");
        ByteLevelBpeVocabulary vocabulary = ByteLevelBpeTrainer.Train(documents, new ByteLevelBpeOptions { VocabularySize = 500, SplitDigits = false });
        vocabulary.Save(directory);
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(directory);

        Assert.Equal(["Ġ12345"], tokenizer.Encode(" 12345").Select(id => TokenString(vocabulary, id)));
        Assert.Equal(["Ġ2024"], tokenizer.Encode(" 2024").Select(id => TokenString(vocabulary, id)));
    }

    [Fact]
    public void Training_is_deterministic_whatever_the_document_order()
    {
        var options = new ByteLevelBpeOptions { VocabularySize = 800 };
        string first = Path.Combine(_root, "first");
        string again = Path.Combine(_root, "again");
        string shuffled = Path.Combine(_root, "shuffled");

        ByteLevelBpeTrainer.Train(Corpus, options).Save(first);
        ByteLevelBpeTrainer.Train(Corpus, options).Save(again);
        List<string> reordered = [.. Corpus];
        new Random(99).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(reordered));
        ByteLevelBpeTrainer.Train(reordered, options).Save(shuffled);

        foreach (string file in new[] { "vocab.json", "merges.txt" })
        {
            byte[] expected = File.ReadAllBytes(Path.Combine(first, file));
            Assert.Equal(expected, File.ReadAllBytes(Path.Combine(again, file)));
            Assert.Equal(expected, File.ReadAllBytes(Path.Combine(shuffled, file)));
        }
    }

    /// <summary>
    /// Sennrich et al.'s example with a leading space, so every word is one of "Ġlow" ×5, "Ġlower" ×2,
    /// "Ġnewest" ×6, "Ġwidest" ×3. Worked by hand: e-s and s-t both occur 9 times, "e" &lt; "s" so
    /// "e s" goes first, then "es t" (9). Then Ġ-l, l-o, o-w tie at 7; ordinally "l" &lt; "o" &lt; "Ġ"
    /// (U+0120), so "l o", then "lo w" ("lo" &lt; "Ġ"), then "Ġ low". The 6s: "e w" &lt; "n e" &lt; "w est"
    /// &lt; "Ġ n" gives "e w", then "ew est", "n ewest", "Ġ newest". The 3s likewise from the right:
    /// "d est", "i dest", "w idest", "Ġ widest". The 2s: "e r" then "Ġlow er". Every pair is then
    /// gone, so training stops before the requested size.
    /// </summary>
    [Fact]
    public void A_hand_worked_corpus_gives_the_expected_merges_in_order()
    {
        string[] documents = [" low low low low low lower lower newest newest newest newest newest newest widest widest widest"];

        ByteLevelBpeVocabulary vocabulary = ByteLevelBpeTrainer.Train(documents, new ByteLevelBpeOptions { VocabularySize = 1000 });

        Assert.Equal(
            ["e s", "es t", "l o", "lo w", "Ġ low", "e w", "ew est", "n ewest", "Ġ newest",
             "d est", "i dest", "w idest", "Ġ widest", "e r", "Ġlow er"],
            vocabulary.Merges.Select(merge => $"{merge.Left} {merge.Right}"));
        Assert.Equal(256 + 15 + 1, vocabulary.Tokens.Count);
        Assert.Equal("es", vocabulary.Tokens[256]);
        Assert.Equal("Ġlower", vocabulary.Tokens[270]);
        Assert.Equal(271, vocabulary.EndOfTextId);
    }

    [Fact]
    public void MinimumPairCount_stops_before_pairs_that_are_too_rare()
    {
        string[] documents = [" low low low lower"];   // l-o, o-w, Ġ-l: 4 each; w-e, e-r: 1

        ByteLevelBpeVocabulary vocabulary = ByteLevelBpeTrainer.Train(documents,
            new ByteLevelBpeOptions { VocabularySize = 1000, MinimumPairCount = 2 });

        Assert.Equal(["l o", "lo w", "Ġ low"], vocabulary.Merges.Select(merge => $"{merge.Left} {merge.Right}"));
    }

    [Fact]
    public void The_trained_tokenizer_compresses_its_corpus_well_below_one_token_per_byte()
    {
        Gpt2Tokenizer tokenizer = TrainAndLoad(new ByteLevelBpeOptions { VocabularySize = 1000 });

        long bytes = Corpus.Sum(document => (long)Encoding.UTF8.GetByteCount(document));
        long tokens = Corpus.Sum(document => (long)tokenizer.Encode(document).Count);

        // Measured 0.20 for this corpus at 1000 ids (every word of its small vocabulary becomes one
        // token; digits stay single); 0.3 leaves room for changes to the generator.
        Assert.True(tokens < 0.3 * bytes, $"{tokens} tokens for {bytes} bytes ({(double)tokens / bytes:F3} per byte)");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(256)]
    public void A_vocabulary_too_small_for_the_bytes_and_end_of_text_is_refused(int vocabularySize)
    {
        var exception = Assert.Throws<ArgumentException>(() =>
            ByteLevelBpeTrainer.Train(["text"], new ByteLevelBpeOptions { VocabularySize = vocabularySize }));

        Assert.Contains($"VocabularySize is {vocabularySize}", exception.Message);
        Assert.Contains("at least 257", exception.Message);
    }

    [Fact]
    public void The_smallest_vocabulary_is_the_bytes_and_end_of_text()
    {
        ByteLevelBpeVocabulary vocabulary = ByteLevelBpeTrainer.Train(Corpus, new ByteLevelBpeOptions { VocabularySize = 257 });

        Assert.Empty(vocabulary.Merges);
        Assert.Equal(256, vocabulary.EndOfTextId);
    }

    [Fact]
    public void A_MinimumPairCount_below_one_is_refused()
    {
        var exception = Assert.Throws<ArgumentException>(() =>
            ByteLevelBpeTrainer.Train(["text"], new ByteLevelBpeOptions { VocabularySize = 300, MinimumPairCount = 0 }));

        Assert.Contains("MinimumPairCount", exception.Message);
    }

    private string TrainAndSave(ByteLevelBpeOptions options)
    {
        string directory = Path.Combine(_root, $"vocab-{options.VocabularySize}-{Guid.NewGuid():N}");
        ByteLevelBpeTrainer.Train(Corpus, options).Save(directory);
        return directory;
    }

    private Gpt2Tokenizer TrainAndLoad(ByteLevelBpeOptions options) => Gpt2Tokenizer.Load(TrainAndSave(options));

    private static string TokenString(ByteLevelBpeVocabulary vocabulary, int id) => vocabulary.Tokens[id];

    private static Dictionary<string, int> ReadVocab(string directory) =>
        JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(directory, "vocab.json")))!;
}
