using System.Text;
using System.Text.Json;
using LlmServer.Contracts;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Serving;

/// <summary>Reads the prompt forms OpenAI accepts and turns them into token ids.</summary>
public static class PromptInput
{
    public const int MaxPrompts = 64;

    /// <summary>
    /// How many prompts <paramref name="prompt"/> holds, read from its shape alone, so that the queue
    /// can refuse a request before any of it is encoded. A malformed prompt counts as one: parsing
    /// it refuses it after.
    /// </summary>
    public static int CountCompletionPrompts(JsonElement prompt)
    {
        int count = prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() > 0 && prompt[0].ValueKind != JsonValueKind.Number
            ? prompt.GetArrayLength()
            : 1;
        SamplingRequestParser.Require(count <= MaxPrompts, "prompt", $"prompt must hold between 1 and {MaxPrompts} prompts.");
        return count;
    }

    /// <summary>prompt: a string, a list of strings, a list of token ids, or a list of such lists.</summary>
    /// <remarks>A text prompt that cannot fit the context is refused as soon as that is known (<see cref="EncodePrompt"/>).</remarks>
    public static IReadOnlyList<IReadOnlyList<int>> ParseCompletionPrompt(JsonElement prompt, ServedModel model, CancellationToken cancellationToken)
    {
        Gpt2Tokenizer tokenizer = model.Tokenizer;
        var prompts = new List<IReadOnlyList<int>>();
        switch (prompt.ValueKind)
        {
            case JsonValueKind.String:
                prompts.Add(EncodePrompt(model, LargeJsonString.GetString(prompt), "prompt", cancellationToken));
                break;
            case JsonValueKind.Array when prompt.GetArrayLength() > 0 && prompt[0].ValueKind == JsonValueKind.Number:
                prompts.Add(ReadTokenIds(prompt, tokenizer, "prompt"));
                break;
            case JsonValueKind.Array:
                foreach (JsonElement item in prompt.EnumerateArray())
                {
                    prompts.Add(item.ValueKind switch
                    {
                        JsonValueKind.String => EncodePrompt(model, LargeJsonString.GetString(item), "prompt", cancellationToken),
                        JsonValueKind.Array => ReadTokenIds(item, tokenizer, "prompt"),
                        _ => throw ApiException.InvalidParameter("prompt", "prompt must be a string, a list of strings, a list of token ids, or a list of token-id lists."),
                    });
                }
                break;
            case JsonValueKind.Undefined or JsonValueKind.Null:
                throw ApiException.InvalidParameter("prompt", "prompt is required.");
            default:
                throw ApiException.InvalidParameter("prompt", "prompt must be a string, a list of strings, a list of token ids, or a list of token-id lists.");
        }
        SamplingRequestParser.Require(prompts.Count is >= 1 and <= MaxPrompts, "prompt", $"prompt must hold between 1 and {MaxPrompts} prompts.");
        return prompts;
    }

    /// <summary>
    /// The ids of a text prompt, or the context_length_exceeded refusal as cheaply as it can be
    /// known: before encoding when even the fewest tokens the text could make are too many (its
    /// UTF-8 length over the longest token's), else as soon as the encoding passes the context,
    /// so refusing a huge prompt costs one pass over it plus about a context's worth of encoding.
    /// Encoding stops when <paramref name="cancellationToken"/> (the client's connection) is cancelled.
    /// </summary>
    public static IReadOnlyList<int> EncodePrompt(ServedModel model, string text, string param, CancellationToken cancellationToken)
    {
        long atLeast = model.Tokenizer.MinTokenCount(text);
        if (atLeast >= model.MaxModelLen)
        {
            throw SamplingRequestParser.PromptTooLong(model, atLeast, param, countIsLowerBound: true);
        }
        // One token short of the context is the longest prompt that leaves room to generate.
        IReadOnlyList<int> ids = model.Tokenizer.Encode(text, model.MaxModelLen - 1, cancellationToken);
        if (ids.Count >= model.MaxModelLen)
        {
            throw SamplingRequestParser.PromptTooLong(model, ids.Count, param, countIsLowerBound: true);
        }
        return ids;
    }

    /// <summary>
    /// The ids the model reads: an empty prompt still needs a position to predict from, and GPT-2
    /// starts every document with end-of-text, so that is what an empty prompt becomes.
    /// </summary>
    public static IReadOnlyList<int> ForModel(IReadOnlyList<int> promptIds, Gpt2Tokenizer tokenizer) =>
        promptIds.Count == 0 ? [tokenizer.EndOfTextId] : promptIds;

    public static IReadOnlyList<int> ReadTokenIds(JsonElement array, Gpt2Tokenizer tokenizer, string param)
    {
        var ids = new List<int>(array.GetArrayLength());
        foreach (JsonElement item in array.EnumerateArray())
        {
            SamplingRequestParser.Require(item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out int id) && tokenizer.IsValidId(id),
                param, $"{param} contains {item}, which is not a token id of this model (0..{tokenizer.VocabSize - 1}).");
            ids.Add(item.GetInt32());
        }
        return ids;
    }

    /// <summary>Chat messages as the template sees them; content parts are joined when all are text.</summary>
    public static IReadOnlyList<ChatMessage> ParseMessages(IReadOnlyList<ChatMessageRequest>? messages)
    {
        SamplingRequestParser.Require(messages is { Count: > 0 }, "messages", "messages must be a non-empty list.");
        var parsed = new List<ChatMessage>(messages!.Count);
        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessageRequest message = messages[i];
            string param = $"messages[{i}]";
            SamplingRequestParser.Require(message is not null, param, $"{param} must be an object.");
            SamplingRequestParser.Require(message!.Role is "system" or "developer" or "user" or "assistant" or "tool",
                $"{param}.role", $"{param}.role must be one of system, developer, user, assistant, tool; got '{message.Role}'.");
            RefuseToolCalling(message, param);
            parsed.Add(new ChatMessage(message.Role!, ReadContent(message.Content, $"{param}.content"), message.Name));
        }
        return parsed;
    }

    /// <summary>
    /// A conversation from a tool-calling client (an assistant turn that called tools, the tool's
    /// answer) has no text for the template to show; read as plain messages it would become empty
    /// turns and the model would answer a conversation the client never had.
    /// </summary>
    private static void RefuseToolCalling(ChatMessageRequest message, string param)
    {
        // An empty tool_calls list is what vLLM and others send back on a plain assistant turn.
        if (message.ToolCalls.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null)
            && !(message.ToolCalls.ValueKind == JsonValueKind.Array && message.ToolCalls.GetArrayLength() == 0))
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"{param}.tool_calls: tool calling is not supported by this model, so a conversation cannot carry tool calls.",
                param: $"{param}.tool_calls", code: "unsupported_parameter");
        }
        if (message.FunctionCall.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"{param}.function_call: function calling is not supported by this model, so a conversation cannot carry function calls.",
                param: $"{param}.function_call", code: "unsupported_parameter");
        }
        if (message.Role == "tool")
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"{param}.role: 'tool' messages answer tool calls, and tool calling is not supported by this model.",
                param: $"{param}.role", code: "unsupported_value");
        }
    }

    /// <summary>Content is required and not empty, as OpenAI has it: null content is for a turn that only called tools.</summary>
    private static string ReadContent(JsonElement content, string param)
    {
        switch (content.ValueKind)
        {
            case JsonValueKind.String:
                return LargeJsonString.GetString(content);
            case JsonValueKind.Undefined:
                throw new ApiException(StatusCodes.Status400BadRequest, $"Missing required parameter: '{param}'.", param: param, code: "missing_required_parameter");
            case JsonValueKind.Null:
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"Invalid type for '{param}': expected a string or an array of content parts, but got null instead.", param: param, code: "invalid_type");
            case JsonValueKind.Array when content.GetArrayLength() == 0:
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.", param: param, code: "empty_array");
            case JsonValueKind.Array:
                var text = new StringBuilder();
                foreach (JsonElement part in content.EnumerateArray())
                {
                    string? type = part.ValueKind == JsonValueKind.Object && part.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String
                        ? t.GetString()
                        : null;
                    SamplingRequestParser.Require(type == "text" && part.TryGetProperty("text", out JsonElement partText) && partText.ValueKind == JsonValueKind.String,
                        param, $"{param} parts must be text parts ({{\"type\":\"text\",\"text\":...}}); this model reads text only (got '{type ?? part.ToString()}').");
                    text.Append(LargeJsonString.GetString(part.GetProperty("text")));
                }
                return text.ToString();
            default:
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"Invalid type for '{param}': expected a string or an array of content parts.", param: param, code: "invalid_type");
        }
    }
}
