using System.Text;
using System.Text.Json;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>The token mask on GPT-2's, Llama 3's and Qwen3's vocabularies: exactly the tokens the matcher accepts, and never none before the end.</summary>
public sealed class TokenTrieTests
{
    private static readonly Dictionary<string, Lazy<(ITokenizer Tokenizer, TokenTrie Trie)>> Vocabularies = new()
    {
        ["gpt2"] = new(() => WithTrie(Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory))),
        // Byte-level BPE from tokenizer.json, 128k and 151k entries, with added special tokens.
        ["llama3"] = new(() => WithTrie(HuggingFaceTokenizer.Load(Path.Combine(TestFixtures.FixturesDirectory, "tokenizers", "llama3")))),
        ["qwen3"] = new(() => WithTrie(HuggingFaceTokenizer.Load(Path.Combine(TestFixtures.FixturesDirectory, "tokenizers", "qwen3")))),
    };

    private static (ITokenizer, TokenTrie) WithTrie(ITokenizer tokenizer) => (tokenizer, new TokenTrie(tokenizer));

    public static TheoryData<string, string, string> MaskCases()
    {
        (string Schema, string Prefix)[] states =
        [
            ("nested", ""),
            ("nested", "{\"person\":{\"name\":\"B"),
            ("enums", "{\"color\":\"re"),
            ("anyof", "{\"value\":"),
            ("flat", "{\"name\":\"x\",\"age\":12"),
            ("integer-root", "-1"),
            ("flat", "{\"name\":\"a\\"),
            ("anyof", "{\"value\":\"ab"),
            ("unicode", "{\"città\":\"東京\",\"note\":\"é"),
        ];
        var cases = new TheoryData<string, string, string>();
        foreach (string vocabulary in new[] { "gpt2", "llama3", "qwen3" })
        {
            foreach ((string schema, string prefix) in states)
            {
                cases.Add(vocabulary, schema, prefix);
            }
        }

        return cases;
    }

    [Theory]
    [MemberData(nameof(MaskCases))]
    public void Mask_IsExactlyTheTokensTheMatcherAccepts(string vocabulary, string schema, string prefix)
    {
        (ITokenizer tokenizer, TokenTrie trie) = Vocabularies[vocabulary].Value;
        var matcher = new GrammarMatcher(JsonGrammar.FromSchema(TestSchemas.Parse(schema)));
        Assert.True(matcher.TryAdvance(Encoding.UTF8.GetBytes(prefix)));
        var mask = new ulong[trie.MaskWords];

        int allowed = trie.AllowedTokens(matcher, mask);

        MatcherState state = matcher.Save();
        int expected = 0;
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            bool accepts = tokenizer.IsSpecialId(id)
                ? matcher.CanEnd && tokenizer.EndOfSequenceIds.Contains(id)
                : matcher.TryAdvance(tokenizer.TokenBytes(id));
            matcher.Restore(state);
            Assert.True(accepts == TokenTrie.IsAllowed(mask, id), $"token {id} '{tokenizer.TokenText(id)}': matcher {accepts}");
            expected += accepts ? 1 : 0;
        }

        Assert.Equal(expected, allowed);
        Assert.True(allowed > 0);
    }

    [Theory]
    [MemberData(nameof(MaskCases))]
    public void A_budgeted_mask_is_exactly_the_accepted_tokens_after_which_the_document_still_fits(string vocabulary, string schema, string prefix)
    {
        (ITokenizer tokenizer, TokenTrie trie) = Vocabularies[vocabulary].Value;
        var matcher = new GrammarMatcher(JsonGrammar.FromSchema(TestSchemas.Parse(schema)));
        Assert.True(matcher.TryAdvance(Encoding.UTF8.GetBytes(prefix)));
        MatcherState state = matcher.Save();
        int minNow = matcher.MinBytesToEnd;
        var mask = new ulong[trie.MaskWords];
        // Budgets around the shortest completion, where tokens that open an escape or a UTF-8 sequence no longer fit.
        foreach (int budget in new[] { minNow - 1, minNow, minNow + 3, minNow + 8 })
        {
            int allowed = trie.AllowedTokens(matcher, mask, budget);
            int expected = 0;
            for (int id = 0; id < tokenizer.VocabSize; id++)
            {
                bool accepts = tokenizer.IsSpecialId(id)
                    ? matcher.CanEnd && tokenizer.EndOfSequenceIds.Contains(id)
                    : matcher.TryAdvance(tokenizer.TokenBytes(id)) && matcher.MinBytesToEnd <= budget;
                matcher.Restore(state);
                Assert.True(accepts == TokenTrie.IsAllowed(mask, id), $"budget {budget}, token {id} '{tokenizer.TokenText(id)}': expected {accepts}");
                expected += accepts ? 1 : 0;
            }

            Assert.Equal(expected, allowed);
        }
    }

    [Theory]
    [InlineData("gpt2", "flat")]
    [InlineData("gpt2", "nested")]
    [InlineData("gpt2", "enums")]
    [InlineData("gpt2", "anyof")]
    [InlineData("gpt2", "unicode")]
    [InlineData("llama3", "nested")]
    [InlineData("llama3", "unicode")]
    [InlineData("qwen3", "anyof")]
    [InlineData("qwen3", "arrays")]
    public void RandomTokenWalks_AlwaysHaveATokenAndEndValid(string vocabulary, string name)
    {
        (ITokenizer tokenizer, TokenTrie trie) = Vocabularies[vocabulary].Value;
        JsonElement schema = TestSchemas.Parse(name);
        JsonGrammar grammar = JsonGrammar.FromSchema(schema);
        var random = new Random(name.Sum(c => c));
        var mask = new ulong[trie.MaskWords];

        for (int walk = 0; walk < 5; walk++)
        {
            var matcher = new GrammarMatcher(grammar);
            var document = new List<byte>();
            for (int step = 0; ; step++)
            {
                Assert.True(step < 2000, "the walk does not end");
                int allowed = trie.AllowedTokens(matcher, mask);
                Assert.True(allowed > 0, $"no token allowed after {Encoding.UTF8.GetString([.. document])}");
                if (matcher.CanEnd && (allowed == tokenizer.EndOfSequenceIds.Count || random.NextDouble() < 0.5))
                {
                    break;
                }

                List<int> candidates = [.. Enumerable.Range(0, tokenizer.VocabSize)
                    .Where(id => TokenTrie.IsAllowed(mask, id) && !tokenizer.IsSpecialId(id))];
                // Later on, prefer tokens that close something, as a model told to finish would.
                if (step > 40 && random.NextDouble() < 0.8)
                {
                    List<int> closing = candidates.FindAll(id => tokenizer.TokenBytes(id).IndexOfAny("\"]}"u8) >= 0);
                    if (closing.Count > 0)
                    {
                        candidates = closing;
                    }
                }

                int chosen = candidates[random.Next(candidates.Count)];
                Assert.True(matcher.TryAdvance(tokenizer.TokenBytes(chosen)));
                document.AddRange(tokenizer.TokenBytes(chosen).ToArray());
            }

            using JsonDocument parsed = JsonDocument.Parse(document.ToArray());
            string? failure = SchemaSubsetValidator.Check(parsed.RootElement, schema, schema);
            Assert.True(failure is null, $"{failure} in {Encoding.UTF8.GetString([.. document])}");
        }
    }
}
