namespace LlmServer.Inference.Sampling;

/// <summary>An alternative token at one position and its log-probability.</summary>
public readonly record struct TokenLogprob(int TokenId, float Logprob);

/// <summary>One sampled token, with its log-probability and the most likely alternatives when asked for.</summary>
/// <remarks>Logprob is null unless the request asked for logprobs: computing it costs a pass over the vocabulary.</remarks>
public sealed record GeneratedToken(int TokenId, float? Logprob, IReadOnlyList<TokenLogprob>? TopLogprobs, int TextOffset);

/// <summary>A prompt token's log-probability given the tokens before it, its rank among the vocabulary (1: the likeliest), and the likeliest alternatives when asked for.</summary>
public sealed record PromptTokenLogprob(int TokenId, float Logprob, int Rank, IReadOnlyList<TokenLogprob>? TopLogprobs);
