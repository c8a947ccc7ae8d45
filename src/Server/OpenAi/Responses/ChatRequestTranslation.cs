using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.OpenAi.Chat;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Responses;

/// <summary>
/// A Responses request as the chat request the server already serves: the conversation items as chat messages (function
/// calls as an assistant turn's tool_calls, their outputs as tool messages), instructions as a first system message,
/// and the flattened tools, tool_choice and text.format in chat's nested shapes.
/// </summary>
public static class ChatRequestTranslation
{
    public static ChatCompletionRequest ToChat(CreateResponseRequest request, IReadOnlyList<ResponseItem> conversation) => new()
    {
        Model = request.Model,
        Messages = Messages(request.Instructions, conversation),
        MaxCompletionTokens = request.MaxOutputTokens,
        Temperature = request.Temperature,
        TopP = request.TopP,
        ResponseFormat = ResponseFormat(request.Text),
        Tools = Tools(request.Tools),
        ToolChoice = ToolChoice(request.ToolChoice),
        ParallelToolCalls = request.ParallelToolCalls,
    };

    private static List<ChatMessageRequest> Messages(string? instructions, IReadOnlyList<ResponseItem> conversation)
    {
        var messages = new List<ChatMessageRequest>();
        if (instructions is not null)
        {
            messages.Add(new ChatMessageRequest("system", JsonSerializer.SerializeToElement(instructions), null));
        }
        // Calls in a row are one assistant turn that called several tools; a call right after the assistant's text joins that turn.
        JsonArray? openCalls = null;
        string? openText = null;
        void CloseTurn()
        {
            if (openCalls is not null)
            {
                messages.Add(new ChatMessageRequest("assistant", openText is null ? default : JsonSerializer.SerializeToElement(openText), null)
                {
                    ToolCalls = JsonSerializer.SerializeToElement(openCalls),
                });
            }
            else if (openText is not null)
            {
                messages.Add(new ChatMessageRequest("assistant", JsonSerializer.SerializeToElement(openText), null));
            }
            (openCalls, openText) = (null, null);
        }
        foreach (ResponseItem item in conversation)
        {
            switch (item)
            {
                case MessageItem { Role: "assistant" } message:
                    CloseTurn();
                    openText = message.JoinedText();
                    break;
                case MessageItem message:
                    CloseTurn();
                    messages.Add(new ChatMessageRequest(message.Role, JsonSerializer.SerializeToElement(message.JoinedText()), null));
                    break;
                case FunctionCallItem call:
                    openCalls ??= [];
                    openCalls.Add(new JsonObject
                    {
                        ["id"] = call.CallId,
                        ["type"] = "function",
                        ["function"] = new JsonObject { ["name"] = call.Name, ["arguments"] = call.Arguments },
                    });
                    break;
                case FunctionCallOutputItem output:
                    CloseTurn();
                    messages.Add(new ChatMessageRequest("tool", JsonSerializer.SerializeToElement(output.Output), null) { ToolCallId = output.CallId });
                    break;
            }
        }
        CloseTurn();
        return messages;
    }

    /// <summary>text.format ({type, name, schema, strict}) as chat's response_format ({type, json_schema: {name, schema, strict}}).</summary>
    private static JsonElement ResponseFormat(JsonElement text)
    {
        if (text.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return default;
        }
        SamplingRequestParser.Require(text.ValueKind == JsonValueKind.Object, "text", "text must be an object.");
        if (text.TryGetProperty("verbosity", out JsonElement verbosity) && verbosity.ValueKind != JsonValueKind.Null)
        {
            SamplingRequestParser.Require(verbosity.ValueKind == JsonValueKind.String && verbosity.GetString() == "medium", "text.verbosity",
                "text.verbosity: this model supports only 'medium'.");
        }
        if (!text.TryGetProperty("format", out JsonElement format) || format.ValueKind == JsonValueKind.Null)
        {
            return default;
        }
        SamplingRequestParser.Require(format.ValueKind == JsonValueKind.Object && format.TryGetProperty("type", out JsonElement type)
            && type.ValueKind == JsonValueKind.String, "text.format", "text.format must be an object with a type.");
        string formatType = format.GetProperty("type").GetString()!;
        if (formatType != "json_schema")
        {
            SamplingRequestParser.Require(formatType is "text" or "json_object", "text.format.type",
                $"text.format.type must be one of text, json_object, json_schema; got '{formatType}'.");
            return JsonSerializer.SerializeToElement(new JsonObject { ["type"] = formatType });
        }
        var schema = new JsonObject();
        foreach (JsonProperty property in format.EnumerateObject())
        {
            if (property.Name != "type")
            {
                schema[property.Name] = JsonNode.Parse(property.Value.GetRawText());
            }
        }
        return JsonSerializer.SerializeToElement(new JsonObject { ["type"] = "json_schema", ["json_schema"] = schema });
    }

    /// <summary>Function tools ({type, name, description, parameters, strict}) as chat's ({type, function: {...}}); other tool types are refused.</summary>
    private static JsonElement Tools(JsonElement tools)
    {
        if (tools.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return default;
        }
        SamplingRequestParser.Require(tools.ValueKind == JsonValueKind.Array, "tools", "tools must be a list of tool definitions.");
        var chatTools = new JsonArray();
        int index = 0;
        foreach (JsonElement tool in tools.EnumerateArray())
        {
            string param = $"tools[{index++}]";
            SamplingRequestParser.Require(tool.ValueKind == JsonValueKind.Object, param, $"{param} must be an object.");
            string? type = tool.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
            if (type != "function")
            {
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"{param}.type: '{type}' tools are not supported; this server calls function tools only.", param: $"{param}.type", code: "unsupported_value");
            }
            var function = new JsonObject();
            foreach (JsonProperty property in tool.EnumerateObject())
            {
                if (property.Name != "type")
                {
                    function[property.Name] = JsonNode.Parse(property.Value.GetRawText());
                }
            }
            chatTools.Add(new JsonObject { ["type"] = "function", ["function"] = function });
        }
        return JsonSerializer.SerializeToElement(chatTools);
    }

    /// <summary>"none", "auto", "required" as they are; {type: "function", name} as chat's {type: "function", function: {name}}.</summary>
    private static JsonElement ToolChoice(JsonElement choice)
    {
        if (choice.ValueKind != JsonValueKind.Object)
        {
            return choice;
        }
        string? type = choice.TryGetProperty("type", out JsonElement t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type != "function")
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"tool_choice.type: '{type}' is not supported; name a function tool ({{\"type\": \"function\", \"name\": ...}}).", param: "tool_choice.type", code: "unsupported_value");
        }
        SamplingRequestParser.Require(choice.TryGetProperty("name", out JsonElement name) && name.ValueKind == JsonValueKind.String,
            "tool_choice.name", "tool_choice.name must be the name of a function tool.");
        return JsonSerializer.SerializeToElement(new JsonObject
        {
            ["type"] = "function",
            ["function"] = new JsonObject { ["name"] = choice.GetProperty("name").GetString() },
        });
    }
}
