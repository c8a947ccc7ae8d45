using System.Text;
using System.Text.Json;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>The token mask on GPT-2's vocabulary: exactly the tokens the matcher accepts, and never none before the end.</summary>
public sealed class TokenTrieTests
{
    private static readonly Lazy<(ITokenizer Tokenizer, TokenTrie Trie)> Gpt2 = new(() =>
    {
        ITokenizer tokenizer = Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);
        return (tokenizer, new TokenTrie(tokenizer));
    });

    [Theory]
    [InlineData("nested", "")]
    [InlineData("nested", "{\"person\":{\"name\":\"B")]
    [InlineData("enums", "{\"color\":\"re")]
    [InlineData("anyof", "{\"value\":")]
    [InlineData("flat", "{\"name\":\"x\",\"age\":12")]
    [InlineData("integer-root", "-1")]
    [InlineData("flat", "{\"name\":\"a\\")]
    [InlineData("anyof", "{\"value\":\"ab")]
    [InlineData("unicode", "{\"città\":\"東京\",\"note\":\"é")]
    public void Mask_IsExactlyTheTokensTheMatcherAccepts(string schema, string prefix)
    {
        (ITokenizer tokenizer, TokenTrie trie) = Gpt2.Value;
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
    [InlineData("flat")]
    [InlineData("nested")]
    [InlineData("enums")]
    [InlineData("anyof")]
    [InlineData("unicode")]
    public void RandomTokenWalks_AlwaysHaveATokenAndEndValid(string name)
    {
        (ITokenizer tokenizer, TokenTrie trie) = Gpt2.Value;
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
