using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tokenization;
using Microsoft.ML.Tokenizers;

namespace LlmServer.Inference.Tests.Tokenization;

/// <summary>
/// Gpt2Tokenizer's own BPE against Microsoft.ML.Tokenizers' <c>BpeTokenizer</c> set up the way the
/// server used it before (byte level, GPT-2's split regex, end-of-text as a special token): the same
/// ids, id for id, on the fixture cases and on thousands of random strings, long runs included.
/// </summary>
public sealed class BpeParityTests
{
    private static readonly Lazy<BpeTokenizer> Reference = new(CreateReference);

    private static Gpt2Tokenizer Tokenizer => Gpt2Fixture.Tokenizer;

    public static TheoryData<string, int[]> OpenAiCases => Gpt2Fixture.OpenAiCases();

    [Theory]
    [MemberData(nameof(OpenAiCases))]
    public void FixtureCase_GivesTheLibrarysIds(string text, int[] _)
    {
        Assert.Equal(Reference.Value.EncodeToIds(text), Tokenizer.Encode(text));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void RandomMixedText_GivesTheLibrarysIds(int seed)
    {
        var random = new Random(seed);
        for (int i = 0; i < 500; i++)
        {
            string text = RandomText(random, random.Next(0, 300));
            Assert.True(Reference.Value.EncodeToIds(text).SequenceEqual(Tokenizer.Encode(text)), $"ids differ for {Escape(text)}");
        }
    }

    [Theory]
    [InlineData("letters")]
    [InlineData("repeated")]
    [InlineData("digits")]
    [InlineData("cjk")]
    [InlineData("punctuation")]
    [InlineData("whitespace")]
    [InlineData("emoji")]
    [InlineData("mixed")]
    public void LongRuns_GiveTheLibrarysIds(string kind)
    {
        var random = new Random(kind.Length);
        foreach (int length in new[] { 17, 100, 513, 2_000, 6_000 })
        {
            string text = LongRun(random, kind, length);
            Assert.True(Reference.Value.EncodeToIds(text).SequenceEqual(Tokenizer.Encode(text)), $"ids differ for a {kind} run of {length}");
        }
    }

    [Fact]
    public void MinTokenCount_NeverExceedsTheTrueCount()
    {
        var random = new Random(7);
        for (int i = 0; i < 300; i++)
        {
            string text = i % 3 == 0 ? LongRun(random, "repeated", random.Next(1, 3000)) : RandomText(random, random.Next(0, 400));
            Assert.True(Tokenizer.MinTokenCount(text) <= Tokenizer.Encode(text).Count, $"bound too high for {Escape(text)}");
        }

        // The end-of-text token is 13 bytes of text for one token: the bound must allow for it.
        Assert.True(Tokenizer.MinTokenCount(string.Concat(Enumerable.Repeat("<|endoftext|>", 50))) <= 50);
    }

    [Fact]
    public void EncodeWithMaxTokens_StopsWithAPrefixOnceOverTheBudget()
    {
        var random = new Random(11);
        for (int i = 0; i < 200; i++)
        {
            string text = RandomText(random, random.Next(0, 400));
            IReadOnlyList<int> full = Tokenizer.Encode(text);
            int budget = random.Next(0, full.Count + 3);
            IReadOnlyList<int> limited = Tokenizer.Encode(text, budget, CancellationToken.None);
            if (full.Count <= budget)
            {
                Assert.Equal(full, limited);
            }
            else
            {
                Assert.True(limited.Count > budget);
                Assert.Equal(full.Take(limited.Count), limited);
            }
        }
    }

    private static BpeTokenizer CreateReference()
    {
        string directory = TestFixtures.TokenizerDirectory;
        Dictionary<string, int> vocabulary = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(directory, "vocab.json")))!;
        List<string> merges = File.ReadLines(Path.Combine(directory, "merges.txt"))
            .Where(line => line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal)).ToList();
        var special = new Dictionary<string, int> { ["<|endoftext|>"] = 50256 };
        return BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = merges,
            ByteLevel = true,
            PreTokenizer = new RegexPreTokenizer(Gpt2SplitPattern.Create(), special),
            SpecialTokens = special,
        });
    }

    // Pieces chosen to meet every branch of the split regex: contractions, letters and numbers with and
    // without a leading space, other symbols, whitespace runs before text and at the end, astral letters,
    // digits and symbols, combining marks, scripts with long merges, and the end-of-text token.
    private static readonly string[] Pieces =
    [
        "a", "b", "e", "the", "The", " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00a0", "\u3000",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", "\"", "0", "7", "42", "3.14", "½", "Ⅻ",
        "!", "?", ".", ",", "-", "--", "...", "(", ")", "{", "}", "<", ">", "|", "/", "\\", "_", "#", "@",
        "中", "文", "字", "日本", "한", "Ж", "ж", "ñ", "é", "e\u0301", "ß", "ا", "ह", "ก",
        "😀", "👍🏽", "🇺🇸", "👨\u200d👩", "𝐀", "𝟘", "𠮷", "𐐀", "\u200b", "\ufeff", "<|endoftext|>", "<|endoftext",
    ];

    private static string RandomText(Random random, int pieces)
    {
        var text = new StringBuilder();
        for (int i = 0; i < pieces; i++)
        {
            text.Append(Pieces[random.Next(Pieces.Length)]);
        }

        return text.ToString();
    }

    private static string LongRun(Random random, string kind, int length)
    {
        var text = new StringBuilder(length);
        for (int i = 0; i < length; i++)
        {
            text.Append(kind switch
            {
                "letters" => (char)('a' + random.Next(26)),
                "repeated" => 'a',
                "digits" => (char)('0' + random.Next(10)),
                "cjk" => (char)(0x4E00 + random.Next(3000)),
                "punctuation" => "!@#$%^&*()-=+[]{};:,.<>/?~"[random.Next(26)],
                "whitespace" => " \t\n"[random.Next(3)],
                "emoji" => '\0',
                _ => (char)('a' + random.Next(26)),
            });
            if (kind == "emoji")
            {
                text.Length--;
                text.Append(char.ConvertFromUtf32(0x1F600 + random.Next(60)));
            }
            else if (kind == "mixed" && random.Next(50) == 0)
            {
                text.Append(Pieces[random.Next(Pieces.Length)]);
            }
        }

        return text.ToString();
    }

    private static string Escape(string text) => JsonSerializer.Serialize(text);
}
