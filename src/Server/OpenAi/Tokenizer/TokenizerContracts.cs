using System.Text.Json;
using System.Text.Json.Serialization;
using LlmServer.OpenAi.Chat;

namespace LlmServer.OpenAi.Tokenizer;

/// <summary>vLLM's /tokenize: either a prompt or chat messages. A field it does not know is refused, as on /v1.</summary>
[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
/// <param name="AddSpecialTokens">vLLM's flag: add what the tokenizer's post-processor adds (Llama 3's &lt;|begin_of_text|&gt;;
/// GPT-2 and Qwen add nothing). Defaults as vLLM's: true for a prompt, false for messages, whose template writes its own.</param>
public sealed record TokenizeRequest(string? Model, string? Prompt, IReadOnlyList<ChatMessageRequest>? Messages, bool? AddGenerationPrompt,
    bool? AddSpecialTokens = null)
{
    /// <summary>vLLM's: the tool definitions the chat template renders with <see cref="Messages"/>.</summary>
    public JsonElement Tools { get; init; }
}

public sealed record TokenizeResponse(IReadOnlyList<int> Tokens, int Count, int MaxModelLen);

[JsonUnmappedMemberHandling(JsonUnmappedMemberHandling.Disallow)]
public sealed record DetokenizeRequest(string? Model, JsonElement Tokens);

public sealed record DetokenizeResponse(string Prompt);

/// <summary>vLLM's /tokenizer_info, the fields lm-eval-harness reads: the special tokens as text and the checkpoint's chat template (null: none).</summary>
public sealed record TokenizerInfoResponse(string EosToken, string? BosToken, string? ChatTemplate, int ModelMaxLength);
