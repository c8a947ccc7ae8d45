using System.Text;
using System.Text.Json;
using LlmServer.Inference.StructuredOutput;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>
/// What constrained decoding promises, checked without a model: whatever acceptable byte is chosen at each step,
/// the document ends up parsing with System.Text.Json and satisfying the schema, and until it can end there is
/// always some acceptable byte.
/// </summary>
public sealed class RandomWalkTests
{
    public static TheoryData<string> SchemaNames => [.. TestSchemas.ByName.Keys];

    [Theory]
    [MemberData(nameof(SchemaNames))]
    public void RandomWalks_YieldDocumentsThatParseAndSatisfyTheSchema(string name)
    {
        JsonElement schema = TestSchemas.Parse(name);
        JsonGrammar grammar = JsonGrammar.FromSchema(schema);
        // string.GetHashCode differs per process; the walks must be the same in every run.
        var random = new Random(name.Sum(c => c));

        for (int walk = 0; walk < 40; walk++)
        {
            byte[] document = Walk(new GrammarMatcher(grammar), random);

            using JsonDocument parsed = JsonDocument.Parse(document);
            string? failure = SchemaSubsetValidator.Check(parsed.RootElement, schema, schema);
            Assert.True(failure is null, $"{failure} in {Encoding.UTF8.GetString(document)}");
        }
    }

    [Fact]
    public void RandomWalks_OfTheJsonObjectGrammar_YieldObjects()
    {
        var random = new Random(7);
        for (int walk = 0; walk < 40; walk++)
        {
            byte[] document = Walk(new GrammarMatcher(JsonGrammar.AnyObject), random);

            using JsonDocument parsed = JsonDocument.Parse(document);
            Assert.Equal(JsonValueKind.Object, parsed.RootElement.ValueKind);
        }
    }

    /// <summary>
    /// Picks a random acceptable byte each step. Past a few hundred bytes it prefers closing bytes and ending,
    /// as a model told to stop would, so that recursive schemas finish; before that any acceptable byte goes.
    /// </summary>
    private static byte[] Walk(GrammarMatcher matcher, Random random)
    {
        var document = new List<byte>();
        var acceptable = new List<byte>();
        while (true)
        {
            bool late = document.Count > 300;
            if (matcher.CanEnd && (matcher.IsFinished || random.NextDouble() < (late ? 0.9 : 0.2)))
            {
                return [.. document];
            }

            MatcherState state = matcher.Save();
            acceptable.Clear();
            for (int b = 0; b < 256; b++)
            {
                if (matcher.TryAdvance((byte)b))
                {
                    acceptable.Add((byte)b);
                    matcher.Restore(state);
                }
            }

            if (acceptable.Count == 0)
            {
                // Nothing may follow (a root number at its longest): the document must be able to end here.
                Assert.True(matcher.CanEnd, $"stuck, unable to end, after {Encoding.UTF8.GetString([.. document])}");
                return [.. document];
            }

            Assert.True(document.Count < 20_000, "the walk does not end");
            byte[] closing = [.. acceptable.Where(b => b is (byte)'"' or (byte)']' or (byte)'}' or (byte)'n' or (byte)'0')];
            byte chosen = late && closing.Length > 0 && random.NextDouble() < 0.9
                ? closing[random.Next(closing.Length)]
                : acceptable[random.Next(acceptable.Count)];
            Assert.True(matcher.TryAdvance(chosen));
            document.Add(chosen);
        }
    }
}
