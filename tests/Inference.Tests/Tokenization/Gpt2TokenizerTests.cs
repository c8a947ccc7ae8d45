using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.Tokenization;

public sealed class Gpt2TokenizerTests
{
    private static Gpt2Tokenizer Tokenizer => Gpt2Fixture.Tokenizer;

    public static TheoryData<string, int[]> OpenAiCases => Gpt2Fixture.OpenAiCases();

    // Ids from OpenAI's encoder.py algorithm (Python `regex` module, same vocab.json/merges.txt):
    // whitespace runs, contractions, scripts and astral-plane characters that the fixture cases miss.
    public static TheoryData<string, int[]> ReferenceEncoderCases => new()
    {
        { "   leading spaces", [220, 220, 3756, 9029] },
        { "trailing spaces   ", [9535, 4386, 9029, 220, 220, 220] },
        { "a  b   c    d", [64, 220, 275, 220, 220, 269, 220, 220, 220, 288] },
        { "x \n y", [87, 220, 198, 331] },
        { "\n\n\n", [628, 198] },
        { "\t\t\ttabs", [197, 197, 197, 8658, 82] },
        { " \t mixed \t\n whitespace ", [220, 197, 7668, 220, 197, 198, 13216, 10223, 220] },
        { "\r\nwindows\r\n", [201, 198, 28457, 201, 198] },
        {
            "emoji 😀 and flags 🇺🇸 and family 👨\u200d👩\u200d👧",
            [368, 31370, 30325, 222, 290, 9701, 12520, 229, 118, 8582, 229, 116, 290, 1641, 50169, 101, 447, 235, 41840, 102, 447, 235, 41840, 100]
        },
        { "中文测试：你好，世界！", [40792, 23877, 229, 38184, 233, 46237, 243, 171, 120, 248, 19526, 254, 25001, 121, 171, 120, 234, 10310, 244, 45911, 234, 171, 120, 223] },
        { "日本語とカタカナ", [33768, 98, 17312, 105, 45739, 252, 30201, 21763, 23376, 21763, 26229] },
        { "한국어 텍스트", [47991, 250, 166, 113, 255, 168, 244, 112, 220, 169, 227, 235, 168, 232, 97, 169, 232, 116] },
        { "Ελληνικά κείμενο", [138, 243, 39377, 39377, 138, 115, 26180, 29945, 43000, 138, 105, 7377, 118, 30950, 138, 107, 34703, 30950, 26180, 26517] },
        { "Привет, мир!", [140, 253, 21169, 18849, 38857, 16843, 20375, 11, 12466, 120, 18849, 21169, 0] },
        { "naïve façade coöperate Ångström", [2616, 38776, 24685, 16175, 671, 763, 9101, 30052, 6184, 227, 782, 2536, 9101, 76] },
        { "e\u0301 combining", [68, 136, 223, 19771] },
        { "don't you'll we've I'd they're she's it'll", [9099, 470, 345, 1183, 356, 1053, 314, 1549, 484, 821, 673, 338, 340, 1183] },
        { "DON'T SHOUT'S", [41173, 6, 51, 6006, 12425, 6, 50] },
        { "Numbers: 3.14159, -42, 1e10, 0x1F", [49601, 25, 513, 13, 1415, 19707, 11, 532, 3682, 11, 352, 68, 940, 11, 657, 87, 16, 37] },
        { "C:\\path\\to\\file.txt", [34, 7479, 6978, 59, 1462, 59, 7753, 13, 14116] },
        { "<html><body>Hi</body></html>", [27, 6494, 6927, 2618, 29, 17250, 3556, 2618, 12240, 6494, 29] },
        { "def f(x):\n\treturn x**2  # square\n", [4299, 277, 7, 87, 2599, 198, 197, 7783, 2124, 1174, 17, 220, 1303, 6616, 198] },
        { "\u00a0non-breaking\u00a0space", [1849, 13159, 12, 13395, 1849, 13200] },
        { "zero\u200bwidth", [22570, 9525, 10394] },
        { "𠮷野家", [172, 254, 106, 115, 34932, 236, 22522, 114] },
        { "a𝒜b 𝟘𝟙 𐍈", [64, 47728, 240, 250, 65, 220, 47728, 253, 246, 47728, 253, 247, 220, 172, 238, 235, 230] },
        // Supplementary-plane letters and digits followed by a contraction: .NET sees surrogate pairs,
        // Python sees letters/numbers, and the split (so the ids) differ unless the pattern accounts for it.
        { "𝐀𝐁're", [47728, 238, 222, 47728, 238, 223, 821] },
        { "𝟘'll", [47728, 253, 246, 1183] },
        { "𐐀't", [172, 238, 238, 222, 470] },
        { "𠮷's good", [172, 254, 106, 115, 338, 922] },
        { "𝒜. 𝟙!", [47728, 240, 250, 13, 220, 47728, 253, 247, 0] },
        { " ", [220] },
        { "!!!???...", [10185, 28358, 986] },
        { "''''", [39115] },
        { "'s'", [338, 6] },
        { "  'll", [220, 705, 297] },
    };

    public static TheoryData<string> RoundTripTexts => new()
    {
        "",
        "     ",
        "\n",
        "\t \t\n\r\n  \n",
        "many   spaces    between     words      ",
        "🧑‍🚀 astronaut, 👍🏽 thumbs, 🏳️‍🌈 flag",
        "混合 text with 中文 and English",
        "Ünïcödé àccénts: Ç ñ ø å ß",
        "Hello<|endoftext|>world",
        "<|endoftext|>",
        "<|endoftext|><|endoftext|>",
        "a <|endoftext|> b",
        "<|endoftext",
        "\u0000\u0001\u007f control bytes",
        "\ufeffbyte order mark",
        "𝕳𝖊𝖑𝖑𝖔 𝟙𝟚𝟛",
    };

    [Theory]
    [MemberData(nameof(OpenAiCases))]
    public void Encode_MatchesOpenAiEncoderOnFixtureCase(string text, int[] expectedIds)
    {
        Assert.Equal(expectedIds, Tokenizer.Encode(text));
    }

    [Theory]
    [MemberData(nameof(OpenAiCases))]
    public void Decode_RestoresFixtureCaseText(string expectedText, int[] ids)
    {
        Assert.Equal(expectedText, Tokenizer.Decode(ids));
    }

    [Theory]
    [MemberData(nameof(ReferenceEncoderCases))]
    public void Encode_MatchesReferenceEncoder(string text, int[] expectedIds)
    {
        Assert.Equal(expectedIds, Tokenizer.Encode(text));
        Assert.Equal(text, Tokenizer.Decode(expectedIds));
    }

    [Theory]
    [MemberData(nameof(RoundTripTexts))]
    public void Decode_OfEncode_ReturnsOriginalText(string text)
    {
        Assert.Equal(text, Tokenizer.Decode(Tokenizer.Encode(text)));
    }

    [Fact]
    public void Encode_EndOfTextInsideText_BecomesTheSpecialIdBetweenIndependentlyEncodedPieces()
    {
        IReadOnlyList<int> ids = Tokenizer.Encode("Hello <|endoftext|> world<|endoftext|>");

        int[] expected = [.. Tokenizer.Encode("Hello "), 50256, .. Tokenizer.Encode(" world"), 50256];
        Assert.Equal(expected, ids);
        Assert.Equal([15496, 220, 50256, 995, 50256], ids);
    }

    // A Fact, not a Theory: xUnit's test-case serialization mangles lone surrogates.
    [Fact]
    public void Encode_LoneSurrogate_IsEncodedAsReplacementCharacter()
    {
        Assert.Equal(Tokenizer.Encode("a\uFFFDb"), Tokenizer.Encode("a\uD800b"));
        Assert.Equal(Tokenizer.Encode("x\uFFFD"), Tokenizer.Encode("x\uDC00"));
        Assert.Equal(Tokenizer.Encode("\uFFFD"), Tokenizer.Encode("\uD83D"));
        Assert.Equal(Tokenizer.Encode("\uFFFD😀"), Tokenizer.Encode("\uDE00\uD83D\uDE00"));
    }

    [Fact]
    public void Encode_FromManyThreadsAtOnce_GivesTheSameIds()
    {
        (string Text, int[] Ids)[] cases = OpenAiCases.Select(row => ((string)row[0], (int[])row[1])).ToArray();

        Parallel.For(0, 400, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            (string text, int[] ids) = cases[i % cases.Length];
            Assert.Equal(ids, Tokenizer.Encode(text));
        });
    }

    // A quadratic merge (Microsoft.ML.Tokenizers' took 17 s for 480,000 letters) would make these
    // take minutes; each is one word to the split regex.
    [Theory]
    [InlineData("letters")]
    [InlineData("cjk")]
    [InlineData("digits")]
    public void Encode_TwoMillionCharacterWord_RoundTrips(string kind)
    {
        var random = new Random(3);
        char[] chars = new char[2_000_000];
        for (int i = 0; i < chars.Length; i++)
        {
            chars[i] = kind switch
            {
                "letters" => (char)('a' + random.Next(26)),
                "cjk" => (char)(0x4E00 + random.Next(3000)),
                _ => (char)('0' + random.Next(10)),
            };
        }

        string text = new(chars);
        IReadOnlyList<int> ids = Tokenizer.Encode(text);

        Assert.Equal(text, Tokenizer.Decode(ids));
        Assert.InRange(ids.Count, Tokenizer.MinTokenCount(text), Encoding.UTF8.GetByteCount(text));
    }

    [Fact]
    public void Encode_AlreadyCancelled_Throws()
    {
        using var cancellation = new CancellationTokenSource();
        cancellation.Cancel();

        Assert.Throws<OperationCanceledException>(() => Tokenizer.Encode("hello world", cancellation.Token));
    }

    [Theory]
    [InlineData("many words")]
    [InlineData("one word")]
    public async Task Encode_CancelledFromAnotherThread_StopsWithoutFinishing(string shape)
    {
        // Seconds of work either way: ~6 million words, or one word of 8 million letters.
        string text = shape == "many words"
            ? string.Concat(Enumerable.Repeat("lorem ipsum dolor ", 2_000_000))
            : new string('x', 8_000_000);
        using var cancellation = new CancellationTokenSource();
        using var started = new ManualResetEventSlim();
        Task<IReadOnlyList<int>> encoding = Task.Run(() =>
        {
            started.Set();
            return Tokenizer.Encode(text, cancellation.Token);
        });
        started.Wait();
        await Task.Delay(50);
        cancellation.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => encoding);
    }

    [Fact]
    public void Encode_EmptyText_GivesNoIds()
    {
        Assert.Empty(Tokenizer.Encode(string.Empty));
    }

    [Fact]
    public void Properties_MatchGpt2()
    {
        Assert.Equal(50257, Tokenizer.VocabSize);
        Assert.Equal(50256, Tokenizer.EndOfTextId);
        Assert.Equal("<|endoftext|>", Tokenizer.EndOfTextToken);
    }

    [Theory]
    [InlineData(0, new byte[] { (byte)'!' })]
    [InlineData(198, new byte[] { (byte)'\n' })]
    [InlineData(220, new byte[] { (byte)' ' })]
    [InlineData(995, new byte[] { (byte)' ', (byte)'w', (byte)'o', (byte)'r', (byte)'l', (byte)'d' })]
    [InlineData(171, new byte[] { 0xEF })]
    [InlineData(120, new byte[] { 0xBC })]
    [InlineData(248, new byte[] { 0x9A })]
    public void TokenBytes_InvertsTheByteLevelAlphabet(int id, byte[] expected)
    {
        Assert.Equal(expected, Tokenizer.TokenBytes(id).ToArray());
    }

    [Fact]
    public void TokenBytes_OfEndOfText_IsItsLiteralText()
    {
        Assert.Equal("<|endoftext|>"u8.ToArray(), Tokenizer.TokenBytes(50256).ToArray());
    }

    [Fact]
    public void TokenBytes_EveryByteHasASingleByteToken()
    {
        var seen = new HashSet<byte>();
        for (int id = 0; id < Tokenizer.VocabSize; id++)
        {
            ReadOnlySpan<byte> bytes = Tokenizer.TokenBytes(id);
            Assert.False(bytes.IsEmpty, $"token {id} has no bytes");
            if (bytes.Length == 1)
            {
                seen.Add(bytes[0]);
            }
        }

        Assert.Equal(256, seen.Count);
    }

    [Fact]
    public void TokenText_DecodesWholeCharactersAndReplacesPartialOnes()
    {
        Assert.Equal(" world", Tokenizer.TokenText(995));
        Assert.Equal("<|endoftext|>", Tokenizer.TokenText(50256));
        Assert.Equal("\uFFFD", Tokenizer.TokenText(171));
    }

    [Theory]
    [InlineData(-1, false)]
    [InlineData(0, true)]
    [InlineData(50256, true)]
    [InlineData(50257, false)]
    [InlineData(int.MaxValue, false)]
    public void IsValidId_AcceptsExactlyTheVocabularyIds(int id, bool expected)
    {
        Assert.Equal(expected, Tokenizer.IsValidId(id));
    }

    [Fact]
    public void TokenBytesAndDecode_RejectUnknownIds()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.TokenBytes(50257).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => Tokenizer.Decode([15496, -1]));
    }

    // Expected strings are Python's bytes.decode("utf-8", errors="replace"): one U+FFFD per maximal
    // invalid subpart.
    [Theory]
    [InlineData(new byte[] { 0xEF, 0xBC, (byte)'a' }, "\uFFFDa")]
    [InlineData(new byte[] { 0x80, 0x80 }, "\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, "\uFFFD\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xC0, 0xAF }, "\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xF0, 0x9F, 0x98 }, "\uFFFD")]
    [InlineData(new byte[] { 0xFF, (byte)'a' }, "\uFFFDa")]
    [InlineData(new byte[] { (byte)'a', 0xE6, 0x97, 0xA5, 0xE6, 0x97 }, "a\u65E5\uFFFD")]
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 }, "\uFFFD\uFFFD\uFFFD\uFFFD")]
    [InlineData(new byte[] { 0xE0, 0x80, 0x80 }, "\uFFFD\uFFFD\uFFFD")]
    public void Decode_InvalidUtf8_ReplacesLikePython(byte[] bytes, string expected)
    {
        Assert.Equal(expected, Tokenizer.Decode(Gpt2Fixture.SingleByteIds(bytes)));
    }

    [Theory]
    [InlineData("tiny-gpt2")]
    [InlineData("gpt2-random-2l-64d")]
    public void Load_ModelDirectory_EncodesReferencePromptsAndDecodesContinuations(string model)
    {
        string directory = TestFixtures.ModelDirectory(model);
        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(directory);

        Assert.Equal(50256, tokenizer.EndOfTextId);
        Assert.Equal(50257, tokenizer.VocabSize);
        using JsonDocument reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "reference.json")));
        foreach (JsonElement testCase in reference.RootElement.GetProperty("cases").EnumerateArray())
        {
            int[] promptIds = testCase.GetProperty("prompt_ids").EnumerateArray().Select(id => id.GetInt32()).ToArray();
            int[] greedyIds = testCase.GetProperty("greedy_ids").EnumerateArray().Select(id => id.GetInt32()).ToArray();
            Assert.Equal(promptIds, tokenizer.Encode(testCase.GetProperty("prompt").GetString()!));
            Assert.Equal(testCase.GetProperty("greedy_text").GetString(), tokenizer.Decode(greedyIds));
        }
    }

    [Theory]
    [InlineData("vocab.json")]
    [InlineData("merges.txt")]
    public void Load_MissingFile_NamesIt(string missingFile)
    {
        using var directory = new TemporaryDirectory();
        WriteTinyTokenizer(directory.Path);
        File.Delete(Path.Combine(directory.Path, missingFile));

        var exception = Assert.Throws<FileNotFoundException>(() => Gpt2Tokenizer.Load(directory.Path));

        Assert.Contains(missingFile, exception.Message);
        Assert.Equal(Path.Combine(directory.Path, missingFile), exception.FileName);
    }

    [Fact]
    public void Load_MergeOfTokensMissingFromVocabulary_IsReportedAsInvalidData()
    {
        using var directory = new TemporaryDirectory();
        WriteTinyTokenizer(directory.Path);
        File.AppendAllText(Path.Combine(directory.Path, "merges.txt"), "b b\n");

        var exception = Assert.Throws<InvalidDataException>(() => Gpt2Tokenizer.Load(directory.Path));

        Assert.Contains("merges.txt", exception.Message);
    }

    [Fact]
    public void Load_MissingDirectory_Throws()
    {
        string path = Path.Combine(Path.GetTempPath(), "no-such-tokenizer-" + Guid.NewGuid().ToString("N"));
        Assert.Throws<DirectoryNotFoundException>(() => Gpt2Tokenizer.Load(path));
    }

    [Fact]
    public void Load_EndOfTextTokenFromConfigMissingFromVocab_IsAddedAfterTheVocabulary()
    {
        using var directory = new TemporaryDirectory();
        WriteTinyTokenizer(directory.Path);
        File.WriteAllText(
            Path.Combine(directory.Path, "tokenizer_config.json"),
            """{"eos_token": {"content": "</s>", "special": true}}""");

        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(directory.Path);

        Assert.Equal("</s>", tokenizer.EndOfTextToken);
        Assert.Equal(5, tokenizer.EndOfTextId);
        Assert.Equal(6, tokenizer.VocabSize);
        Assert.Equal([3, 2, 5, 4], tokenizer.Encode(" ab</s>abb"));
        Assert.Equal(" ab</s>abb", tokenizer.Decode([3, 2, 5, 4]));
    }

    [Fact]
    public void Load_EndOfTextTokenFromSpecialTokensMap_IsUsedWhenConfigHasNone()
    {
        using var directory = new TemporaryDirectory();
        WriteTinyTokenizer(directory.Path);
        File.WriteAllText(Path.Combine(directory.Path, "tokenizer_config.json"), """{"model_max_length": 8}""");
        File.WriteAllText(Path.Combine(directory.Path, "special_tokens_map.json"), """{"eos_token": "ab"}""");

        Gpt2Tokenizer tokenizer = Gpt2Tokenizer.Load(directory.Path);

        Assert.Equal("ab", tokenizer.EndOfTextToken);
        Assert.Equal(2, tokenizer.EndOfTextId);
        Assert.Equal(5, tokenizer.VocabSize);
    }

    /// <summary>A byte-level vocabulary over "a", "b", " " (written Ġ) with merges "a b" and "ab b".</summary>
    private static void WriteTinyTokenizer(string directory)
    {
        File.WriteAllText(
            Path.Combine(directory, "vocab.json"),
            """{"a": 0, "b": 1, "ab": 2, "\u0120": 3, "abb": 4}""",
            Encoding.UTF8);
        File.WriteAllText(Path.Combine(directory, "merges.txt"), "#version: 0.2\na b\nab b\n", Encoding.UTF8);
    }

    private sealed class TemporaryDirectory : IDisposable
    {
        public TemporaryDirectory()
        {
            Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "gpt2-tokenizer-test-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Path);
        }

        public string Path { get; }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
