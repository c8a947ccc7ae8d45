using System.Text;
using LlmServer.Bench.StructuredOutput;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Bench.Tests.StructuredOutput;

/// <summary>The benchmark's own inputs hold: each document follows its schema, and the mask walk gets through them.</summary>
public sealed class GrammarCostsTests
{
    public static TheoryData<string> SchemaNames() => [.. BenchmarkSchemas.All.Select(s => s.Name).Append(BenchmarkSchemas.LongText.Name)];

    [Theory]
    [MemberData(nameof(SchemaNames))]
    public void EachDocument_IsAWholeDocumentOfItsSchema(string name)
    {
        BenchmarkSchemas.Case schema = BenchmarkSchemas.All.Append(BenchmarkSchemas.LongText).Single(s => s.Name == name);
        var matcher = new GrammarMatcher(JsonGrammar.FromSchema(schema.SchemaElement));

        Assert.True(matcher.TryAdvance(Encoding.UTF8.GetBytes(schema.Document)));
        Assert.True(matcher.CanEnd);
    }

    [Fact]
    public void MaskWalk_OverGpt2sVocabulary_SplitsEveryMaskBetweenStringsAndStructure()
    {
        ITokenizer tokenizer = Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);
        var trie = new TokenTrie(tokenizer);

        IReadOnlyList<GrammarCosts.MaskCost> masks = GrammarCosts.MeasureMasks(BenchmarkSchemas.All, tokenizer, trie, passes: 2);

        Assert.Equal([.. BenchmarkSchemas.All.Select(s => s.Name), "all"], masks.Select(m => m.Schema));
        foreach (GrammarCosts.MaskCost mask in masks)
        {
            Assert.Equal(mask.Tokens * mask.Passes, mask.InStringValue.Count + mask.Structural.Count);
        }

        // The tree's document has no string values; every other one has some.
        Assert.Equal(0, masks.Single(m => m.Schema == "tree").InStringValue.Count);
        Assert.All(masks.Where(m => m.Schema is not "tree"), m => Assert.True(m.InStringValue.Count > 0, m.Schema));
        Assert.Equal(masks.Take(masks.Count - 1).Sum(m => m.Tokens), masks[^1].Tokens);
    }

    [Fact]
    public void MaskWalk_RefusesADocumentOutsideItsSchema()
    {
        ITokenizer tokenizer = Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);
        BenchmarkSchemas.Case flat = BenchmarkSchemas.All.Single(s => s.Name == "flat");
        var broken = flat with { Document = flat.Document.Replace("\"age\":36", "\"age\":\"36\"", StringComparison.Ordinal) };

        var error = Assert.Throws<InvalidOperationException>(() => GrammarCosts.MeasureMasks([broken], tokenizer, new TokenTrie(tokenizer), passes: 1));
        Assert.Contains("flat document", error.Message);
    }
}
