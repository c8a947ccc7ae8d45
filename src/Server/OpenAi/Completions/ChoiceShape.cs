using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tokenization;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Completions;

/// <summary>
/// What a completion choice shows of its prompt and its tokens: the echoed prompt with its logprobs in the legacy
/// shape, vLLM's prompt_logprobs, and the completion itself unless only the prompt was scored (max_tokens 0).
/// </summary>
/// <param name="logprobs">The request's logprobs: null, no legacy logprobs at all.</param>
/// <param name="echoedLogprobs">Alternatives per echoed prompt token; null unless both echo and logprobs were asked for.</param>
/// <param name="promptLogprobs">vLLM's prompt_logprobs: alternatives per prompt token, or null.</param>
/// <param name="promptOnly">The one token generated is dropped: the client asked for max_tokens 0.</param>
internal sealed class ChoiceShape(ITokenizer tokenizer, int? logprobs, int? echoedLogprobs, int? promptLogprobs, bool promptOnly,
    Func<int, IReadOnlyList<int>> promptIdsOf, Func<int, string> echoOf)
{
    public bool PromptOnly => promptOnly;

    /// <summary>The prompt part waits for the prompt's logprobs, which come once the prompt has been computed.</summary>
    public bool PromptPartNeedsLogprobs => echoedLogprobs is not null || promptLogprobs is not null;

    /// <summary>A non-streamed choice: <paramref name="candidate"/> is which submission produced it.</summary>
    public CompletionChoice Whole(int index, int candidate, ChoiceAccumulator choice)
    {
        string echo = echoOf(candidate);
        CompletionLogprobs? legacy = null;
        if (logprobs is not null)
        {
            legacy = echoedLogprobs is { } k ? EchoLogprobs(promptIdsOf(candidate), choice.PromptLogprobs!, k) : Empty;
            if (!promptOnly)
            {
                legacy = legacy.Concat(Logprobs(choice.Tokens, echo.Length));
            }
        }
        return new CompletionChoice(index, echo + (promptOnly ? "" : choice.Text), legacy,
            promptOnly ? "length" : ChoiceAccumulator.WireFinishReason(choice.FinishReason!.Value), promptOnly ? null : choice.StopReason)
        {
            PromptLogprobs = PromptLogprobsOf(choice.PromptLogprobs),
        };
    }

    /// <summary>The first chunk of a streamed choice: its echoed prompt and the prompt's logprobs, or null when there is nothing to say.</summary>
    public CompletionChoice? PromptPart(int index, IReadOnlyList<PromptTokenLogprob?>? computed)
    {
        string echo = echoOf(index);
        if (echo.Length == 0 && promptLogprobs is null)
        {
            return null;
        }
        CompletionLogprobs? legacy = echoedLogprobs is { } k ? EchoLogprobs(promptIdsOf(index), computed!, k) : null;
        return new CompletionChoice(index, echo, legacy, null) { PromptLogprobs = PromptLogprobsOf(computed) };
    }

    /// <summary>The legacy logprobs of streamed completion tokens.</summary>
    public CompletionLogprobs? TokensPart(int index, IReadOnlyList<GeneratedToken> tokens) =>
        logprobs is null ? null : Logprobs(tokens, echoOf(index).Length);

    private IReadOnlyList<IReadOnlyDictionary<string, PromptLogprobEntry>?>? PromptLogprobsOf(IReadOnlyList<PromptTokenLogprob?>? computed) =>
        promptLogprobs is { } k ? PromptLogprobsWire.Render(computed!, k, tokenizer) : null;

    private static readonly CompletionLogprobs Empty = new([], [], [], []);

    /// <summary>The prompt's tokens in the legacy shape: the first has no logprob and no alternatives (null).</summary>
    private CompletionLogprobs EchoLogprobs(IReadOnlyList<int> promptIds, IReadOnlyList<PromptTokenLogprob?> computed, int alternatives)
    {
        var detokenizer = new IncrementalDetokenizer(tokenizer);
        var offsets = new int[promptIds.Count];
        for (int i = 0; i < promptIds.Count; i++)
        {
            offsets[i] = detokenizer.TextLength;
            detokenizer.Push(promptIds[i]);
        }
        return new CompletionLogprobs(offsets,
            computed.Select(p => p?.Logprob).ToArray(),
            promptIds.Select(tokenizer.TokenText).ToArray(),
            computed.Select(p => p is null ? null : (IReadOnlyDictionary<string, float>)TopDictionary(p.TokenId, p.Logprob, (p.TopLogprobs ?? []).Take(alternatives))).ToArray());
    }

    private CompletionLogprobs Logprobs(IReadOnlyList<GeneratedToken> tokens, int offsetBase) =>
        new(tokens.Select(t => offsetBase + t.TextOffset).ToArray(),
            tokens.Select(t => t.Logprob).ToArray(),
            tokens.Select(t => tokenizer.TokenText(t.TokenId)).ToArray(),
            tokens.Select(t => (IReadOnlyDictionary<string, float>?)TopDictionary(t.TokenId, t.Logprob!.Value, t.TopLogprobs ?? [])).ToArray());

    /// <summary>
    /// The top alternatives plus the token itself, so there may be logprobs + 1 entries, as OpenAI
    /// documents: a client can always look up the token it got.
    /// </summary>
    private Dictionary<string, float> TopDictionary(int tokenId, float logprob, IEnumerable<TokenLogprob> alternatives)
    {
        var top = new Dictionary<string, float>();
        foreach (TokenLogprob alternative in alternatives)
        {
            // Two ids can decode to the same text (partial UTF-8); the likelier one keeps the key.
            top.TryAdd(tokenizer.TokenText(alternative.TokenId), alternative.Logprob);
        }
        top.TryAdd(tokenizer.TokenText(tokenId), logprob);
        return top;
    }
}
