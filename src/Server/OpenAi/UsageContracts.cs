using System.Text.Json.Serialization;

namespace LlmServer.OpenAi;

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, PromptTokensDetails? PromptTokensDetails = null);

public sealed record PromptTokensDetails(int CachedTokens);

/// <summary>
/// stream_options: include_usage is honoured; include_obfuscation is accepted and changes nothing
/// (this server adds no obfuscation padding to chunks, which is what false asks for).
/// </summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record StreamOptions(bool? IncludeUsage, bool? IncludeObfuscation = null);
