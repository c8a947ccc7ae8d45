using System.Text;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.Tokenization;

public sealed class IncrementalDetokenizerTests
{
    private static Gpt2Tokenizer Tokenizer => Gpt2Fixture.Tokenizer;

    public static TheoryData<string, int[]> OpenAiCases => Gpt2Fixture.OpenAiCases();

    [Theory]
    [MemberData(nameof(OpenAiCases))]
    public void Push_StreamedFixtureCase_ConcatenatesToDecodeWithoutReplacementCharacters(string text, int[] ids)
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);
        var streamed = new StringBuilder();

        foreach (int id in ids)
        {
            string delta = detokenizer.Push(id);
            Assert.DoesNotContain('\uFFFD', delta);
            AssertNoBrokenSurrogatePair(delta);
            streamed.Append(delta);
        }

        streamed.Append(detokenizer.Flush());
        Assert.Equal(Tokenizer.Decode(ids), streamed.ToString());
        Assert.Equal(text, streamed.ToString());
        Assert.Equal(text, detokenizer.Text);
    }

    [Fact]
    public void Push_EmojiSplitOverFourByteTokens_ArrivesWhole()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        // U+1F600 GRINNING FACE is F0 9F 98 80.
        int[] ids = Gpt2Fixture.SingleByteIds(0xF0, 0x9F, 0x98, 0x80);

        Assert.Equal(string.Empty, detokenizer.Push(ids[0]));
        Assert.Equal(string.Empty, detokenizer.Push(ids[1]));
        Assert.Equal(string.Empty, detokenizer.Push(ids[2]));
        Assert.Equal("😀", detokenizer.Push(ids[3]));
        Assert.Equal(string.Empty, detokenizer.Flush());
    }

    // GPT-2's own splits: " 😀" is [" \xF0\x9F\x98", "\x80"], "🙂" is ["\xF0\x9F", "\x99\x82"],
    // "🤖 robot" is ["\xF0\x9F", "\xA4", "\x96", " robot"].
    [Theory]
    [InlineData(" 😀", new[] { " ", "😀" })]
    [InlineData("🙂", new[] { "", "🙂" })]
    [InlineData("🤖 robot", new[] { "", "", "🤖", " robot" })]
    public void Push_EmojiSplitOverGpt2Tokens_ArrivesWhole(string text, string[] expectedDeltas)
    {
        IReadOnlyList<int> ids = Tokenizer.Encode(text);
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        string[] deltas = ids.Select(detokenizer.Push).ToArray();

        Assert.Equal(expectedDeltas, deltas);
        Assert.Equal(string.Empty, detokenizer.Flush());
    }

    [Fact]
    public void Push_EmojiWithSkinToneModifier_NeverEmitsHalfACharacter()
    {
        IReadOnlyList<int> ids = Tokenizer.Encode("👍🏽👨\u200d👩\u200d👧 ok");
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        var streamed = new StringBuilder();
        foreach (int id in ids)
        {
            string delta = detokenizer.Push(id);
            Assert.DoesNotContain('\uFFFD', delta);
            AssertNoBrokenSurrogatePair(delta);
            streamed.Append(delta);
        }

        Assert.Equal("👍🏽👨\u200d👩\u200d👧 ok", streamed.ToString());
    }

    [Fact]
    public void Push_CjkCharacterSplitOverTokens_ArrivesWhole()
    {
        // U+65E5 (日) is E6 97 A5.
        int[] ids = Gpt2Fixture.SingleByteIds(0xE6, 0x97, 0xA5);
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        Assert.Equal(string.Empty, detokenizer.Push(ids[0]));
        Assert.Equal(string.Empty, detokenizer.Push(ids[1]));
        Assert.Equal("日", detokenizer.Push(ids[2]));
    }

    [Fact]
    public void Push_LoneContinuationByte_IsReplacedAtOnce()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        Assert.Equal("\uFFFD", detokenizer.Push(Gpt2Fixture.SingleByteId(0x80)));
        Assert.Equal("a", detokenizer.Push(Gpt2Fixture.SingleByteId((byte)'a')));
        Assert.Equal(string.Empty, detokenizer.Flush());
    }

    [Theory]
    [InlineData(0xFF)]
    [InlineData(0xC0)]
    [InlineData(0xF5)]
    public void Push_ByteThatCanNeverStartACharacter_IsReplacedAtOnce(byte value)
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        Assert.Equal("\uFFFD", detokenizer.Push(Gpt2Fixture.SingleByteId(value)));
    }

    [Fact]
    public void Push_TruncatedSequenceFollowedByAscii_ReplacesItAndContinues()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);
        int[] ids = Gpt2Fixture.SingleByteIds(0xE6, 0x97, (byte)'a', (byte)'b');

        Assert.Equal(string.Empty, detokenizer.Push(ids[0]));
        Assert.Equal(string.Empty, detokenizer.Push(ids[1]));
        Assert.Equal("\uFFFDa", detokenizer.Push(ids[2]));
        Assert.Equal("b", detokenizer.Push(ids[3]));
        Assert.Equal("\uFFFDab", detokenizer.Text);
    }

    [Fact]
    public void Push_TruncatedSequenceFollowedByNewLeadByte_ReplacesOnlyTheTruncatedPart()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);
        int[] ids = Gpt2Fixture.SingleByteIds(0xF0, 0x9F, 0xE6, 0x97, 0xA5);

        string streamed = string.Concat(ids.Select(detokenizer.Push));

        Assert.Equal("\uFFFD日", streamed);
    }

    [Fact]
    public void Flush_TruncatedSequenceAtEndOfStream_IsReplaced()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        Assert.Equal("x", detokenizer.Push(Gpt2Fixture.SingleByteId((byte)'x')));
        Assert.Equal(string.Empty, detokenizer.Push(Gpt2Fixture.SingleByteId(0xF0)));
        Assert.Equal(string.Empty, detokenizer.Push(Gpt2Fixture.SingleByteId(0x9F)));
        Assert.Equal("\uFFFD", detokenizer.Flush());
        Assert.Equal("x\uFFFD", detokenizer.Text);
        Assert.Equal(string.Empty, detokenizer.Flush());
    }

    [Fact]
    public void Push_EndOfTextToken_EmitsItsText()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        Assert.Equal("<|endoftext|>", detokenizer.Push(Tokenizer.EndOfTextId));
    }

    [Fact]
    public void Push_UnknownId_Throws()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        Assert.Throws<ArgumentOutOfRangeException>(() => detokenizer.Push(Tokenizer.VocabSize));
    }

    [Fact]
    public void Text_IsEverythingEmittedSoFar()
    {
        var detokenizer = new IncrementalDetokenizer(Tokenizer);
        Assert.Equal(string.Empty, detokenizer.Text);

        foreach (int id in Tokenizer.Encode("Hello world"))
        {
            detokenizer.Push(id);
        }

        Assert.Equal("Hello world", detokenizer.Text);
        Assert.Equal("Hello world".Length, detokenizer.TextLength);
    }

    // Random byte soup, mostly invalid UTF-8: whatever the split, the stream equals one-shot Decode.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    public void Push_RandomBytes_ConcatenatesToDecode(int seed)
    {
        var random = new Random(seed);
        var ids = new int[500];
        for (int i = 0; i < ids.Length; i++)
        {
            // Favour bytes around UTF-8's boundaries so that partial and invalid sequences are common.
            byte value = random.Next(4) switch
            {
                0 => (byte)random.Next(0x20, 0x7F),
                1 => (byte)random.Next(0x80, 0xC0),
                2 => (byte)random.Next(0xC0, 0xF8),
                _ => (byte)random.Next(256),
            };
            ids[i] = Gpt2Fixture.SingleByteId(value);
        }

        var detokenizer = new IncrementalDetokenizer(Tokenizer);
        var streamed = new StringBuilder();
        foreach (int id in ids)
        {
            streamed.Append(detokenizer.Push(id));
        }

        streamed.Append(detokenizer.Flush());
        Assert.Equal(Tokenizer.Decode(ids), streamed.ToString());
    }

    [Fact]
    public void Push_MixedValidText_SplitAtEveryTokenMatchesDecode()
    {
        const string text = "naïve 日本語 🧑‍🚀 Привет 𝕳𝖊𝖑𝖑𝖔 \t\n end";
        IReadOnlyList<int> ids = Tokenizer.Encode(text);
        var detokenizer = new IncrementalDetokenizer(Tokenizer);

        string streamed = string.Concat(ids.Select(detokenizer.Push)) + detokenizer.Flush();

        Assert.Equal(text, streamed);
    }

    private static void AssertNoBrokenSurrogatePair(string delta)
    {
        for (int i = 0; i < delta.Length; i++)
        {
            if (char.IsHighSurrogate(delta[i]))
            {
                Assert.True(i + 1 < delta.Length && char.IsLowSurrogate(delta[i + 1]), $"unpaired high surrogate in '{delta}'");
                i++;
            }
            else
            {
                Assert.False(char.IsLowSurrogate(delta[i]), $"unpaired low surrogate in '{delta}'");
            }
        }
    }
}
