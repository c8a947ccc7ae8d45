using System.Text;
using System.Text.Json;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>A request's constraint token by token, on GPT-2's vocabulary, where "&lt;tool_call&gt;" is spelt in pieces.</summary>
public sealed class ConstrainedOutputTests
{
    private static readonly Lazy<(ITokenizer Tokenizer, TokenTrie Trie)> Gpt2 = new(() =>
    {
        ITokenizer tokenizer = Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);
        return (tokenizer, new TokenTrie(tokenizer));
    });

    private static readonly JsonGrammar Calls = ToolCallGrammar.Build(
        [new ToolFunction("lookup", JsonDocument.Parse("""{"type":"object","properties":{"q":{"type":"string"}},"required":["q"],"additionalProperties":false}""").RootElement, Strict: true)],
        ToolCallSyntax.Hermes, parallel: true);

    private static int TokenOf(ITokenizer tokenizer, string text)
    {
        IReadOnlyList<int> ids = tokenizer.Encode(text);
        Assert.Single(ids);
        return ids[0];
    }

    [Fact]
    public void Before_its_trigger_the_output_is_free_but_for_tokens_that_would_complete_it_with_refused_text()
    {
        (ITokenizer tokenizer, TokenTrie trie) = Gpt2.Value;
        var output = new ConstrainedOutput(new GrammarConstraint(Calls, "<tool_call>"), trie, tokenizer);
        Assert.True(output.AllowedTokens().IsEmpty); // nothing written yet that a token could complete badly

        foreach (int id in tokenizer.Encode("Sure. <tool_call"))
        {
            output.Accept(id);
        }

        Assert.False(output.IsActive);
        ReadOnlySpan<ulong> mask = output.AllowedTokens();
        Assert.False(mask.IsEmpty);
        Assert.True(TokenTrie.IsAllowed(mask, TokenOf(tokenizer, ">")));        // completes the trigger; the newline comes next
        Assert.True(TokenTrie.IsAllowed(mask, TokenOf(tokenizer, " the")));     // does not complete it: free
        // Every token that completes it and goes on with anything but the newline due next (">>", ">\"", ...).
        int refused = 0;
        for (int id = 0; id < tokenizer.VocabSize; id++)
        {
            ReadOnlySpan<byte> bytes = tokenizer.TokenBytes(id);
            if (bytes.Length > 1 && bytes[0] == (byte)'>' && bytes[1] != (byte)'\n' && !tokenizer.IsSpecialId(id))
            {
                Assert.False(TokenTrie.IsAllowed(mask, id), $"'{tokenizer.TokenText(id)}' is allowed");
                refused++;
            }
        }

        Assert.True(refused > 5);

        output.Accept(TokenOf(tokenizer, ">"));
        Assert.True(output.IsActive);
        mask = output.AllowedTokens();
        Assert.True(TokenTrie.IsAllowed(mask, TokenOf(tokenizer, "\n")));
        Assert.False(TokenTrie.IsAllowed(mask, TokenOf(tokenizer, " the")));
    }

    [Fact]
    public void A_whole_call_written_token_by_token_is_accepted_and_then_only_another_call_or_the_end()
    {
        (ITokenizer tokenizer, TokenTrie trie) = Gpt2.Value;
        var output = new ConstrainedOutput(new GrammarConstraint(Calls), trie, tokenizer);
        string call = "<tool_call>\n{\"name\": \"lookup\", \"arguments\": {\"q\": \"weather\"}}\n</tool_call>";
        foreach (int id in tokenizer.Encode(call))
        {
            Assert.True(TokenTrie.IsAllowed(output.AllowedTokens(), id), $"token {id} '{tokenizer.TokenText(id)}' refused");
            output.Accept(id);
        }

        ReadOnlySpan<ulong> mask = output.AllowedTokens();
        Assert.True(TokenTrie.IsAllowed(mask, tokenizer.EndOfTextId));
        Assert.True(TokenTrie.IsAllowed(mask, TokenOf(tokenizer, "\n")));
        Assert.False(TokenTrie.IsAllowed(mask, TokenOf(tokenizer, " the")));
    }
}
