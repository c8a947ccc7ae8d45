using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tokenization;

namespace LlmServer.OpenAi.Generation;

/// <summary>One token's entry in vLLM's prompt_logprobs: its logprob, its rank in the vocabulary (1: likeliest), and its text.</summary>
public sealed record PromptLogprobEntry(float Logprob, int Rank, string DecodedToken);

/// <summary>
/// vLLM's prompt_logprobs extension: per prompt position null (the first token, predicted from nothing) or a map from
/// token id to its entry, holding the prompt's own token and the likeliest alternatives.
/// </summary>
public static class PromptLogprobsWire
{
    /// <param name="alternatives">How many of the likeliest tokens to list besides the prompt's own.</param>
    public static IReadOnlyList<IReadOnlyDictionary<string, PromptLogprobEntry>?> Render(IReadOnlyList<PromptTokenLogprob?> logprobs,
        int alternatives, ITokenizer tokenizer) =>
        logprobs.Select(position => position is null ? null : (IReadOnlyDictionary<string, PromptLogprobEntry>)Entry(position, alternatives, tokenizer)).ToArray();

    private static Dictionary<string, PromptLogprobEntry> Entry(PromptTokenLogprob position, int alternatives, ITokenizer tokenizer)
    {
        var entries = new Dictionary<string, PromptLogprobEntry>
        {
            [position.TokenId.ToString(System.Globalization.CultureInfo.InvariantCulture)] =
                new(position.Logprob, position.Rank, tokenizer.TokenText(position.TokenId)),
        };
        foreach ((TokenLogprob alternative, int rank) in (position.TopLogprobs ?? []).Take(alternatives).Select((a, i) => (a, i + 1)))
        {
            entries.TryAdd(alternative.TokenId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                new(alternative.Logprob, rank, tokenizer.TokenText(alternative.TokenId)));
        }
        return entries;
    }
}
