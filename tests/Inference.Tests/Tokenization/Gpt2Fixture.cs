using System.Text.Json;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.Tokenization;

/// <summary>The GPT-2 tokenizer of shared/fixtures/tokenizer, loaded once for all tests, and its cases.</summary>
internal static class Gpt2Fixture
{
    private static readonly Lazy<Gpt2Tokenizer> LazyTokenizer =
        new(() => Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory));

    private static readonly Lazy<int[]> LazySingleByteIds = new(FindSingleByteIds);

    public static Gpt2Tokenizer Tokenizer => LazyTokenizer.Value;

    /// <summary>cases.json: strings with the ids OpenAI's own GPT-2 encoder gives them.</summary>
    public static TheoryData<string, int[]> OpenAiCases()
    {
        using FileStream stream = File.OpenRead(Path.Combine(TestFixtures.TokenizerDirectory, "cases.json"));
        using JsonDocument document = JsonDocument.Parse(stream);
        var data = new TheoryData<string, int[]>();
        foreach (JsonElement testCase in document.RootElement.GetProperty("cases").EnumerateArray())
        {
            int[] ids = testCase.GetProperty("ids").EnumerateArray().Select(id => id.GetInt32()).ToArray();
            data.Add(testCase.GetProperty("text").GetString()!, ids);
        }

        return data;
    }

    /// <summary>The id of the token that stands for exactly one byte (byte-level BPE has one for each of the 256).</summary>
    public static int SingleByteId(byte value) => LazySingleByteIds.Value[value];

    public static int[] SingleByteIds(params byte[] bytes) => bytes.Select(SingleByteId).ToArray();

    private static int[] FindSingleByteIds()
    {
        var ids = new int[256];
        Array.Fill(ids, -1);
        for (int id = 0; Tokenizer.IsValidId(id); id++)
        {
            ReadOnlySpan<byte> bytes = Tokenizer.TokenBytes(id);
            if (bytes.Length == 1 && ids[bytes[0]] < 0)
            {
                ids[bytes[0]] = id;
            }
        }

        Assert.DoesNotContain(-1, ids);
        return ids;
    }
}
