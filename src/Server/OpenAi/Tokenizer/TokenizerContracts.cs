using System.Text.Json;
using System.Text.Json.Serialization;
using LlmServer.OpenAi.Chat;

namespace LlmServer.OpenAi.Tokenizer;

/// <summary>vLLM's /tokenize: either a prompt or chat messages. A field it does not know is refused, as on /v1.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
/// <param name="AddSpecialTokens">vLLM's flag, accepted and without effect: GPT-2's tokenizer adds no special tokens either way.</param>
public sealed record TokenizeRequest(string? Model, string? Prompt, IReadOnlyList<ChatMessageRequest>? Messages, bool? AddGenerationPrompt,
    bool? AddSpecialTokens = null);

public sealed record TokenizeResponse(IReadOnlyList<int> Tokens, int Count, int MaxModelLen);

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record DetokenizeRequest(string? Model, JsonElement Tokens);

public sealed record DetokenizeResponse(string Prompt);
