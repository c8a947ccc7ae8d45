using System.Text.Json;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Responses;

/// <summary>
/// A request's <c>input</c> as conversation items: a string is one user message; a list holds messages (with or without
/// <c>type: "message"</c>, content a string or text parts), function calls and their outputs. Each item gets an id, as
/// OpenAI gives them, so GET input_items can page over them.
/// </summary>
public static class ResponseInput
{
    public static IReadOnlyList<ResponseItem> Read(JsonElement input)
    {
        switch (input.ValueKind)
        {
            case JsonValueKind.String:
                return [new MessageItem(NewId("msg"), "user", "completed", [new InputText(LargeJsonString.GetString(input))])];
            case JsonValueKind.Array:
                var items = new List<ResponseItem>();
                int index = 0;
                foreach (JsonElement item in input.EnumerateArray())
                {
                    items.Add(ReadItem(item, $"input[{index++}]"));
                }
                return items;
            case JsonValueKind.Undefined or JsonValueKind.Null:
                throw new ApiException(StatusCodes.Status400BadRequest, "Missing required parameter: 'input'.", param: "input", code: "missing_required_parameter");
            default:
                throw new ApiException(StatusCodes.Status400BadRequest, "Invalid type for 'input': expected a string or a list of items.", param: "input", code: "invalid_type");
        }
    }

    public static string NewId(string prefix) => $"{prefix}_{Guid.NewGuid():N}";

    private static ResponseItem ReadItem(JsonElement item, string param)
    {
        SamplingRequestParser.Require(item.ValueKind == JsonValueKind.Object, param, $"{param} must be an object.");
        string type = OptionalString(item, "type", param) ?? "message";
        string id = OptionalString(item, "id", param) ?? NewId(type switch { "function_call" => "fc", "function_call_output" => "fco", _ => "msg" });
        switch (type)
        {
            case "message":
                string? role = OptionalString(item, "role", param);
                SamplingRequestParser.Require(role is "user" or "system" or "developer" or "assistant", $"{param}.role",
                    $"{param}.role must be one of user, system, developer, assistant; got '{role}'.");
                return new MessageItem(id, role!, "completed", ReadContent(item, role!, $"{param}.content"));
            case "function_call":
                return new FunctionCallItem(id, RequiredString(item, "call_id", param), RequiredString(item, "name", param),
                    OptionalString(item, "arguments", param) ?? "", "completed");
            case "function_call_output":
                return new FunctionCallOutputItem(id, RequiredString(item, "call_id", param), RequiredString(item, "output", param), "completed");
            default:
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"{param}.type: '{type}' items are not supported; this server reads message, function_call and function_call_output items.",
                    param: $"{param}.type", code: "unsupported_value");
        }
    }

    private static IReadOnlyList<ContentPart> ReadContent(JsonElement item, string role, string param)
    {
        if (!item.TryGetProperty("content", out JsonElement content) || content.ValueKind == JsonValueKind.Null)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, $"Missing required parameter: '{param}'.", param: param, code: "missing_required_parameter");
        }
        if (content.ValueKind == JsonValueKind.String)
        {
            string text = LargeJsonString.GetString(content);
            return [role == "assistant" ? new OutputText(text) : new InputText(text)];
        }
        SamplingRequestParser.Require(content.ValueKind == JsonValueKind.Array, param, $"{param} must be a string or a list of content parts.");
        var parts = new List<ContentPart>();
        int index = 0;
        foreach (JsonElement part in content.EnumerateArray())
        {
            string partParam = $"{param}[{index++}]";
            string? type = part.ValueKind == JsonValueKind.Object ? OptionalString(part, "type", partParam) : null;
            SamplingRequestParser.Require(type is "input_text" or "output_text", $"{partParam}.type",
                $"{partParam} must be a text part (input_text or output_text); this model reads text only (got '{type}').");
            string text = RequiredString(part, "text", partParam);
            parts.Add(type == "output_text" ? new OutputText(text) : new InputText(text));
        }
        return parts;
    }

    private static string RequiredString(JsonElement item, string name, string param) =>
        OptionalString(item, name, param) ?? throw new ApiException(StatusCodes.Status400BadRequest,
            $"Missing required parameter: '{param}.{name}'.", param: $"{param}.{name}", code: "missing_required_parameter");

    private static string? OptionalString(JsonElement item, string name, string param)
    {
        if (!item.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        SamplingRequestParser.Require(value.ValueKind == JsonValueKind.String, $"{param}.{name}", $"{param}.{name} must be a string.");
        return LargeJsonString.GetString(value);
    }
}
