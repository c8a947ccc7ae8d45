namespace LlmServer.Contracts;

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, PromptTokensDetails? PromptTokensDetails = null);

public sealed record PromptTokensDetails(int CachedTokens);

public sealed record StreamOptions(bool? IncludeUsage);
