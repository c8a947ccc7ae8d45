using System.Text;
using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Chat;

/// <summary>Reads OpenAI's chat messages into the turns a chat template formats.</summary>
public static class ChatMessages
{
    /// <summary>Chat messages as the template sees them; content parts are joined when all are text.</summary>
    public static IReadOnlyList<ChatMessage> Parse(IReadOnlyList<ChatMessageRequest>? messages)
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
