using System.Text.Json;
using LlmServer.Inference.StructuredOutput;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>What the compiler refuses, and that the message names the keyword and its path.</summary>
public sealed class SchemaCompilerTests
{
    public static TheoryData<string, string, string> Unsupported => new()
    {
        { """{"type":"string","pattern":"^a"}""", "pattern", "$" },
        { """{"type":"object","properties":{"n":{"type":"integer","minimum":0}},"required":["n"],"additionalProperties":false}""", "minimum", "$.properties.n" },
        { """{"type":"integer","minimum":-9007199254740991,"maximum":100}""", "maximum", "$" },
        { """{"type":"number","minimum":-9007199254740991,"maximum":9007199254740991}""", "minimum", "$" },
        { """{"type":"object","properties":{"l":{"type":"array","items":{"type":"string","format":"email"}}},"additionalProperties":false}""", "format", "$.properties.l.items" },
        { """{"type":"object","properties":{},"additionalProperties":true}""", "additionalProperties", "$" },
        { """{"type":"object","properties":{"a":{"type":"string"}},"required":["b"],"additionalProperties":false}""", "required", "$" },
        { """{"allOf":[{"type":"string"}]}""", "allOf", "$" },
        { """{"anyOf":[{"type":"string"},{"type":"object","patternProperties":{}}]}""", "patternProperties", "$.anyOf[1]" },
        { """{"$defs":{"x":{"type":"array","minItems":1}},"$ref":"#/$defs/x"}""", "minItems", "$.$defs.x" },
        { """{"$ref":"#/$defs/missing"}""", "$ref", "$" },
        { """{"$ref":"https://example.com/schema.json"}""", "$ref", "$" },
        { """{"$defs":{"a":{"anyOf":[{"$ref":"#/$defs/a"},{"type":"null"}]}},"$ref":"#/$defs/a"}""", "$ref", "$.$defs.a.anyOf[0]" },
        { """{"type":"date"}""", "type", "$" },
        { """{"type":"string","items":{"type":"string"}}""", "items", "$" },
        { """{"description":"no type"}""", "type", "$" },
        { """{"type":"object","properties":{"a":{"$ref":"#","type":"object"}}}""", "type", "$.properties.a" },
    };

    [Theory]
    [MemberData(nameof(Unsupported))]
    public void UnsupportedSchema_NamesTheKeywordAndItsPath(string schema, string keyword, string path)
    {
        var error = Assert.Throws<SchemaNotSupportedException>(() => JsonGrammar.FromSchema(JsonDocument.Parse(schema).RootElement));

        Assert.Equal(keyword, error.Keyword);
        Assert.Equal(path, error.Path);
        Assert.Contains($"'{keyword}'", error.Message, StringComparison.Ordinal);
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ZodIntegerBounds_AreKeptByTheDigitBound_SoTheyCompile()
    {
        // What zod 4's z.number().int() writes: JavaScript's safe-integer range.
        JsonGrammar grammar = JsonGrammar.FromSchema(JsonDocument.Parse(
            """{"type":"integer","minimum":-9007199254740991,"maximum":9007199254740991}""").RootElement);

        var longest = new GrammarMatcher(grammar);
        Assert.True(longest.TryAdvance("-999999999999999"u8));
        Assert.True(longest.CanEnd);
        Assert.False(longest.TryAdvance((byte)'9'));
    }

    [Fact]
    public void Cache_CompilesASchemaOnce_AndKeepsPropertyOrderApart()
    {
        var cache = new JsonGrammarCache();
        JsonElement ab = JsonDocument.Parse("""{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"}}}""").RootElement;
        JsonElement abSpaced = JsonDocument.Parse("""{ "type": "object", "properties": { "a": {"type":"string"}, "b": {"type":"string"} } }""").RootElement;
        JsonElement ba = JsonDocument.Parse("""{"type":"object","properties":{"b":{"type":"string"},"a":{"type":"string"}}}""").RootElement;

        JsonGrammar first = cache.GetOrCompile(ab);

        Assert.Same(first, cache.GetOrCompile(abSpaced));
        Assert.NotSame(first, cache.GetOrCompile(ba));
        Assert.Equal(2, cache.Count);
    }

    [Fact]
    public void Cache_StaysBounded()
    {
        var cache = new JsonGrammarCache(capacity: 4);
        for (int i = 0; i < 10; i++)
        {
            cache.GetOrCompile(JsonDocument.Parse($$"""{"const":{{i}}}""").RootElement);
        }

        Assert.True(cache.Count <= 4);
    }
}
