using System.Text.Json;

namespace LlmServer.Contracts;

/// <summary>vLLM's /tokenize: either a prompt or chat messages.</summary>
public sealed record TokenizeRequest(string? Model, string? Prompt, IReadOnlyList<ChatMessageRequest>? Messages, bool? AddGenerationPrompt);

public sealed record TokenizeResponse(IReadOnlyList<int> Tokens, int Count, int MaxModelLen);

public sealed record DetokenizeRequest(string? Model, JsonElement Tokens);

public sealed record DetokenizeResponse(string Prompt);
