using System.Text;
using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;
using LlmServer.OpenAi.Chat.ToolCalling;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Chat;

/// <summary>Reads OpenAI's chat messages into the turns a chat template formats.</summary>
public static class ChatMessages
{
    /// <summary>
    /// The conversation and tools as <paramref name="formatter"/>'s template is given them: as they are for a template
    /// that takes tools, rewritten into plain turns with the tools in the system message for one that does not
    /// (<see cref="DefaultToolPrompt"/>).
    /// </summary>
    /// <param name="tools">The tools in OpenAI's <c>tools</c> shape, or null.</param>
    public static (IReadOnlyList<ChatMessage> Messages, JsonElement? Tools) ForTemplate(IReadOnlyList<ChatMessageRequest>? messages,
        ChatPromptFormatter formatter, JsonElement? tools)
    {
        if (ToolCallFamily.Of(formatter).TemplateTakesTools)
        {
            return (Parse(messages, formatter.RendersToolCalls), tools);
        }
        return (DefaultToolPrompt.Rewrite(Parse(messages, rendersToolCalls: true), tools), null);
    }

    /// <summary>Chat messages as the template sees them; content parts are joined when all are text.</summary>
    /// <param name="rendersToolCalls">
    /// Whether the model's chat template renders tool calls (<see cref="ChatPromptFormatter.RendersToolCalls"/>): then an
    /// assistant turn's <c>tool_calls</c> and <c>tool</c> messages reach it as vLLM passes them; otherwise they are refused.
    /// </param>
    public static IReadOnlyList<ChatMessage> Parse(IReadOnlyList<ChatMessageRequest>? messages, bool rendersToolCalls)
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
            RefuseFunctionCall(message, param);
            if (!rendersToolCalls)
            {
                RefuseToolCalling(message, param);
                parsed.Add(new ChatMessage(message.Role!, ReadContent(message.Content, $"{param}.content"), message.Name));
                continue;
            }

            IReadOnlyList<ChatToolCall>? toolCalls = ReadToolCalls(message, param);
            // A turn that only called tools has null content; the template gets "", as vLLM gives it.
            string content = toolCalls is not null && message.Content.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null
                ? ""
                : ReadContent(message.Content, $"{param}.content");
            parsed.Add(new ChatMessage(message.Role!, content, message.Name)
            {
                ToolCalls = toolCalls,
                ToolCallId = message.Role == "tool" ? message.ToolCallId : null,
            });
        }
        return parsed;
    }

    private static void RefuseFunctionCall(ChatMessageRequest message, string param)
    {
        if (message.FunctionCall.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"{param}.function_call: function calls (the deprecated form of tool_calls) are not supported in a conversation.",
                param: $"{param}.function_call", code: "unsupported_parameter");
        }
    }

    /// <summary>
    /// A conversation from a tool-calling client (an assistant turn that called tools, the tool's
    /// answer) has no text for a template without tool calls to show; read as plain messages it would
    /// become empty turns and the model would answer a conversation the client never had.
    /// </summary>
    private static void RefuseToolCalling(ChatMessageRequest message, string param)
    {
        // An empty tool_calls list is what vLLM and others send back on a plain assistant turn.
        if (HasToolCalls(message))
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"{param}.tool_calls: this model's chat template does not render tool calls, so a conversation cannot carry them.",
                param: $"{param}.tool_calls", code: "unsupported_parameter");
        }
        if (message.Role == "tool")
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"{param}.role: 'tool' messages answer tool calls, and this model's chat template does not render tool calls.",
                param: $"{param}.role", code: "unsupported_value");
        }
    }

    private static bool HasToolCalls(ChatMessageRequest message) =>
        message.ToolCalls.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null)
        && !(message.ToolCalls.ValueKind == JsonValueKind.Array && message.ToolCalls.GetArrayLength() == 0);

    /// <summary>
    /// An assistant turn's tool_calls in OpenAI's shape (<c>{"id", "type": "function", "function": {"name", "arguments"}}</c>),
    /// with the JSON-string arguments parsed into the object templates expect, as vLLM does (an empty string is {}).
    /// Null for none or an empty list.
    /// </summary>
    private static IReadOnlyList<ChatToolCall>? ReadToolCalls(ChatMessageRequest message, string param)
    {
        if (!HasToolCalls(message))
        {
            return null;
        }
        string listParam = $"{param}.tool_calls";
        SamplingRequestParser.Require(message.Role == "assistant", listParam, $"{listParam}: only assistant messages carry tool calls.");
        SamplingRequestParser.Require(message.ToolCalls.ValueKind == JsonValueKind.Array, listParam, $"{listParam} must be a list of tool calls.");
        var calls = new List<ChatToolCall>();
        int index = 0;
        foreach (JsonElement call in message.ToolCalls.EnumerateArray())
        {
            string callParam = $"{listParam}[{index++}]";
            SamplingRequestParser.Require(call.ValueKind == JsonValueKind.Object, callParam, $"{callParam} must be an object.");
            string? type = OptionalString(call, "type", callParam);
            SamplingRequestParser.Require(type is null or "function", $"{callParam}.type", $"{callParam}.type must be 'function', got '{type}'.");
            SamplingRequestParser.Require(call.TryGetProperty("function", out JsonElement function) && function.ValueKind == JsonValueKind.Object,
                $"{callParam}.function", $"{callParam}.function must be an object with name and arguments.");
            string? name = OptionalString(function, "name", $"{callParam}.function");
            SamplingRequestParser.Require(name is { Length: > 0 }, $"{callParam}.function.name", $"{callParam}.function.name must be a non-empty string.");
            calls.Add(new ChatToolCall(OptionalString(call, "id", callParam), name!, ReadArguments(function, $"{callParam}.function.arguments")));
        }
        return calls;
    }

    private static JsonElement ReadArguments(JsonElement function, string param)
    {
        if (!function.TryGetProperty("arguments", out JsonElement arguments) || arguments.ValueKind == JsonValueKind.Null
            || (arguments.ValueKind == JsonValueKind.String && arguments.GetString()!.Length == 0))
        {
            return EmptyObject;
        }
        if (arguments.ValueKind != JsonValueKind.String)
        {
            // Already an object, as transformers' own examples write them.
            return arguments.Clone();
        }
        try
        {
            using JsonDocument parsed = JsonDocument.Parse(arguments.GetString()!);
            return parsed.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw ApiException.InvalidParameter(param, $"{param} must be a JSON string of the call's arguments: {e.Message}");
        }
    }

    private static readonly JsonElement EmptyObject = JsonDocument.Parse("{}").RootElement.Clone();

    private static string? OptionalString(JsonElement item, string name, string param)
    {
        if (!item.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        SamplingRequestParser.Require(value.ValueKind == JsonValueKind.String, $"{param}.{name}", $"{param}.{name} must be a string.");
        return value.GetString();
    }

    /// <summary>
    /// A request's <c>tools</c> for the chat template's <c>tools</c>, passed as the client sent them (as transformers
    /// does); null when absent. Each must be an object.
    /// </summary>
    public static JsonElement? Tools(JsonElement tools)
    {
        if (tools.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return null;
        }
        SamplingRequestParser.Require(tools.ValueKind == JsonValueKind.Array, "tools", "tools must be a list of tool definitions.");
        int index = 0;
        foreach (JsonElement tool in tools.EnumerateArray())
        {
            SamplingRequestParser.Require(tool.ValueKind == JsonValueKind.Object, $"tools[{index}]", $"tools[{index}] must be an object.");
            index++;
        }
        return tools;
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
