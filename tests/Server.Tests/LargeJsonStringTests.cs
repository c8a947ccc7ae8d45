using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using LlmServer.OpenAi;
using LlmServer.OpenAi.Generation;

namespace LlmServer.Tests;

/// <summary>The pool-free decoding of long JSON strings gives what System.Text.Json gives, errors included.</summary>
public sealed class LargeJsonStringTests
{
    private static readonly string[] Pieces =
        ["a", "Z", " ", "\n", "\r\n", "\t", "\"", "\\", "/", "\b", "\f", "\u0001", "\u007f", "é", "中", "😀", "𝐀", "\u2028", "<", "&", "'"];

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Decode_GivesSystemTextJsonsString(bool escapeNonAscii)
    {
        var encoder = escapeNonAscii ? JavaScriptEncoder.Default : JavaScriptEncoder.UnsafeRelaxedJsonEscaping;
        var random = new Random(escapeNonAscii ? 1 : 2);
        for (int i = 0; i < 300; i++)
        {
            var text = new StringBuilder();
            int length = random.Next(0, 400);
            for (int j = 0; j < length; j++)
            {
                text.Append(Pieces[random.Next(Pieces.Length)]);
            }
            byte[] json = JsonSerializer.SerializeToUtf8Bytes(text.ToString(), new JsonSerializerOptions { Encoder = encoder });

            string expected = JsonDocument.Parse(json).RootElement.GetString()!;
            Assert.Equal(expected, LargeJsonString.Decode(json.AsSpan(1, json.Length - 2)));
            Assert.Equal(text.ToString(), expected);
        }
    }

    [Fact]
    public void Decode_OfEscapesWrittenByHand_MatchesSystemTextJson()
    {
        // Upper- and lower-case hex, an escaped solidus, a surrogate pair as two escapes.
        string json = "\"\\u00E9\\u00e9\\/\\uD83D\\uDE00\\ud835\\udc00x\\\"\\\\\"";
        Assert.Equal(JsonDocument.Parse(json).RootElement.GetString(), LargeJsonString.Decode(Encoding.UTF8.GetBytes(json)[1..^1]));
    }

    [Theory]
    [InlineData("\"a\\ud800b\"")]
    [InlineData("\"a\\ud800\"")]
    [InlineData("\"a\\udc00\"")]
    [InlineData("\"\\ud800\\u0041\"")]
    public void Decode_UnpairedSurrogateEscape_ThrowsAsSystemTextJsonDoes(string json)
    {
        Assert.Throws<InvalidOperationException>(() => JsonDocument.Parse(json).RootElement.GetString());
        Assert.Throws<InvalidOperationException>(() => LargeJsonString.Decode(Encoding.UTF8.GetBytes(json)[1..^1]));
    }

    [Fact]
    public void IsWellFormed_says_exactly_when_Decode_succeeds()
    {
        // Escapes, surrogate escapes paired and not, raw UTF-8 and bytes that are not UTF-8, mixed at random.
        byte[][] pieces =
        [
            "a"u8.ToArray(), "\\n"u8.ToArray(), "\\\""u8.ToArray(), "\\u00e9"u8.ToArray(), "\\uD83D\\uDE00"u8.ToArray(), "\\ud800"u8.ToArray(),
            "\\udc00"u8.ToArray(), "\\uD83D"u8.ToArray(), "é"u8.ToArray(), "中"u8.ToArray(), "😀"u8.ToArray(), [0xFF], [0xC3], [0xE2, 0x82], [0x80],
        ];
        var random = new Random(5);
        int wellFormed = 0, malformed = 0;
        for (int i = 0; i < 5_000; i++)
        {
            var bytes = new List<byte>();
            int count = random.Next(0, 8);
            for (int j = 0; j < count; j++)
            {
                bytes.AddRange(pieces[random.Next(pieces.Length)]);
            }
            byte[] escaped = [.. bytes];
            bool decodes;
            try
            {
                LargeJsonString.Decode(escaped);
                decodes = true;
            }
            catch (InvalidOperationException)
            {
                decodes = false;
            }

            Assert.True(decodes == LargeJsonString.IsWellFormed(escaped), $"IsWellFormed disagrees with Decode on {Convert.ToHexString(escaped)}");
            _ = decodes ? wellFormed++ : malformed++;
        }
        Assert.True(wellFormed > 500 && malformed > 500, $"{wellFormed} well-formed, {malformed} malformed: the mix should hold plenty of both");
    }

    [Fact]
    public void Decode_InvalidUtf8_ThrowsAsSystemTextJsonDoes()
    {
        byte[] bytes = [(byte)'a', 0xFF, (byte)'b'];
        Assert.Throws<InvalidOperationException>(() => LargeJsonString.Decode(bytes));
    }

    [Fact]
    public void GetString_OfALongElement_EqualsJsonElementGetString()
    {
        string text = string.Concat(Enumerable.Repeat("line \"one\"\n\t中文😀 ", 10_000));
        using JsonDocument document = JsonDocument.Parse(JsonSerializer.Serialize(new { content = text }));
        JsonElement content = document.RootElement.GetProperty("content");

        Assert.Equal(content.GetString(), LargeJsonString.GetString(content));
    }

    [Fact]
    public void LongStopStrings_AreReadAsSystemTextJsonReadsThem()
    {
        string stop = string.Concat(Enumerable.Repeat("end\n中", 30_000));
        using JsonDocument single = JsonDocument.Parse(JsonSerializer.Serialize(stop, new JsonSerializerOptions { Encoder = JavaScriptEncoder.Default }));
        using JsonDocument list = JsonDocument.Parse(JsonSerializer.Serialize(new[] { stop, "x" }));

        Assert.Equal([stop], SamplingRequestParser.ParseStop(single.RootElement));
        Assert.Equal([stop, "x"], SamplingRequestParser.ParseStop(list.RootElement));
        using JsonDocument bad = JsonDocument.Parse("[\"a\", 5]");
        Assert.Equal("stop", Assert.Throws<ApiException>(() => SamplingRequestParser.ParseStop(bad.RootElement)).Param);
    }

    private sealed record Holder(string? Prompt, Dictionary<string, double>? LogitBias);

    [Fact]
    public void TheConverter_ReadsLongAndShortStringsAndDictionaryKeysAsBefore()
    {
        string prompt = string.Concat(Enumerable.Repeat("say \"hi\"\n中文 ", 20_000));
        string json = JsonSerializer.Serialize(new { prompt, logit_bias = new Dictionary<string, double> { ["50256"] = -100 } },
            new JsonSerializerOptions { Encoder = JavaScriptEncoder.Default });

        Holder read = JsonSerializer.Deserialize<Holder>(json, OpenAiJson.Options)!;

        Assert.Equal(prompt, read.Prompt);
        Assert.Equal(-100, read.LogitBias!["50256"]);
        Assert.Equal("{\"prompt\":\"short\"}", JsonSerializer.Serialize(new Holder("short", null), OpenAiJson.Options));
    }

    [Theory]
    [InlineData("{\"prompt\": 5}", false)]
    [InlineData("{\"prompt\": \"a\\ud800\"}", true)]
    [InlineData("{\"prompt\": [\"a\"]}", false)]
    public void The_string_converter_refuses_a_wrong_type_or_text_that_is_not_Unicode_with_a_path(string json, bool malformedText)
    {
        var exception = Assert.ThrowsAny<JsonException>(() => JsonSerializer.Deserialize<Holder>(json, OpenAiJson.Options));

        Assert.Equal(malformedText, exception is MalformedTextException);
        Assert.Equal("$.prompt", exception.Path);
    }

    [Fact]
    public void The_string_converter_refuses_a_long_unpaired_surrogate_escape_with_a_path()
    {
        string json = "{\"prompt\": \"" + new string('a', 100_000) + "\\ud800\"}";
        var exception = Assert.Throws<MalformedTextException>(() => JsonSerializer.Deserialize<Holder>(json, OpenAiJson.Options));
        Assert.Equal("$.prompt", exception.Path);
    }
}
