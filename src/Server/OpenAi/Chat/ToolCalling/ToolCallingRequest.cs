using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.StructuredOutput;

namespace LlmServer.OpenAi.Chat.ToolCalling;

public enum ToolChoiceMode
{
    /// <summary>The tools are shown to the model and nothing is parsed: the reply is all content.</summary>
    None,
    /// <summary>The model may call tools or answer; calls are parsed out of the reply.</summary>
    Auto,
    /// <summary>The reply is one or more calls, decoding constrained to them.</summary>
    Required,
    /// <summary>The reply is one call of <see cref="ToolCallingRequest.NamedFunction"/>, decoding constrained to it.</summary>
    Named,
}

/// <summary>
/// A chat request's <c>tools</c>, <c>tool_choice</c> and <c>parallel_tool_calls</c>, or the deprecated
/// <c>functions</c> and <c>function_call</c> read onto the same (one call at most, answered as <c>function_call</c>).
/// Malformed definitions are a 400 naming the field, in OpenAI's words where OpenAI has them.
/// </summary>
/// <param name="Functions">The offered functions, in the request's order.</param>
/// <param name="TemplateTools">The tools in OpenAI's <c>tools</c> shape, as chat templates read them (legacy functions wrapped).</param>
/// <param name="ParametersParams">For each function, the request field holding its schema (for errors).</param>
public sealed record ToolCallingRequest(
    IReadOnlyList<ToolFunction> Functions,
    JsonElement TemplateTools,
    IReadOnlyList<string> ParametersParams,
    ToolChoiceMode Mode,
    string? NamedFunction,
    bool Parallel,
    bool Legacy)
{
    /// <summary>OpenAI's pattern and limit for function names.</summary>
    private const int MaxNameLength = 64;

    public IReadOnlyList<string> FunctionNames => Functions.Select(f => f.Name).ToArray();

    /// <summary>Null when the request offers no tools (absent, null or an empty list).</summary>
    public static ToolCallingRequest? Parse(JsonElement tools, JsonElement toolChoice, bool? parallelToolCalls, JsonElement functions, JsonElement functionCall)
    {
        bool hasTools = IsPresent(tools);
        bool hasFunctions = IsPresent(functions);
        if (hasTools && hasFunctions)
        {
            throw ApiException.InvalidParameter("functions", "Send either tools or functions (their deprecated form), not both.");
        }
        if (hasFunctions || (!hasTools && IsPresent(functionCall)))
        {
            return ParseLegacy(functions, functionCall);
        }

        var definitions = new List<(ToolFunction Function, string Param)>();
        if (hasTools)
        {
            RequireKind(tools, JsonValueKind.Array, "tools", "an array");
            int index = 0;
            foreach (JsonElement tool in tools.EnumerateArray())
            {
                string param = $"tools[{index++}]";
                RequireKind(tool, JsonValueKind.Object, param, "an object");
                string type = RequiredString(tool, "type", param);
                if (type != "function")
                {
                    throw new ApiException(StatusCodes.Status400BadRequest,
                        $"Invalid value for '{param}.type': '{type}'. This server supports only 'function' tools.", param: $"{param}.type", code: "invalid_value");
                }
                if (!tool.TryGetProperty("function", out JsonElement function))
                {
                    throw Missing($"{param}.function");
                }
                definitions.Add((ReadFunction(function, $"{param}.function"), $"{param}.function"));
            }
        }
        RequireUniqueNames(definitions);

        ToolChoiceMode? mode = null;
        string? named = null;
        switch (toolChoice.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                break;
            case JsonValueKind.String:
                mode = toolChoice.GetString() switch
                {
                    "none" => ToolChoiceMode.None,
                    "auto" => ToolChoiceMode.Auto,
                    "required" => ToolChoiceMode.Required,
                    var other => throw InvalidValue("tool_choice", other!, ["none", "auto", "required"]),
                };
                break;
            case JsonValueKind.Object:
                string type = RequiredString(toolChoice, "type", "tool_choice");
                if (type != "function")
                {
                    throw new ApiException(StatusCodes.Status400BadRequest,
                        $"Invalid value for 'tool_choice.type': '{type}'. This server supports only 'function'.", param: "tool_choice.type", code: "invalid_value");
                }
                if (!toolChoice.TryGetProperty("function", out JsonElement chosen))
                {
                    throw Missing("tool_choice.function");
                }
                RequireKind(chosen, JsonValueKind.Object, "tool_choice.function", "an object");
                named = RequiredString(chosen, "name", "tool_choice.function");
                mode = ToolChoiceMode.Named;
                break;
            default:
                throw new ApiException(StatusCodes.Status400BadRequest, "Invalid type for 'tool_choice': expected a string or an object.", param: "tool_choice", code: "invalid_type");
        }

        if (definitions.Count == 0)
        {
            if (mode is not null)
            {
                throw new ApiException(StatusCodes.Status400BadRequest,
                    "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", param: "tool_choice", code: "invalid_value");
            }
            return null;
        }
        RequireKnown(named, definitions, "tool_choice.function.name");
        return new ToolCallingRequest(definitions.Select(d => d.Function).ToArray(), tools, definitions.Select(d => $"{d.Param}.parameters").ToArray(),
            mode ?? ToolChoiceMode.Auto, named, Parallel: parallelToolCalls ?? true, Legacy: false);
    }

    private static ToolCallingRequest? ParseLegacy(JsonElement functions, JsonElement functionCall)
    {
        var definitions = new List<(ToolFunction Function, string Param)>();
        var templateTools = new JsonArray();
        if (IsPresent(functions))
        {
            RequireKind(functions, JsonValueKind.Array, "functions", "an array");
            int index = 0;
            foreach (JsonElement function in functions.EnumerateArray())
            {
                string param = $"functions[{index++}]";
                definitions.Add((ReadFunction(function, param), param));
                templateTools.Add(new JsonObject { ["type"] = "function", ["function"] = JsonNode.Parse(function.GetRawText()) });
            }
        }
        RequireUniqueNames(definitions);

        ToolChoiceMode? mode = null;
        string? named = null;
        switch (functionCall.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                break;
            case JsonValueKind.String:
                mode = functionCall.GetString() switch
                {
                    "none" => ToolChoiceMode.None,
                    "auto" => ToolChoiceMode.Auto,
                    var other => throw InvalidValue("function_call", other!, ["none", "auto"]),
                };
                break;
            case JsonValueKind.Object:
                named = RequiredString(functionCall, "name", "function_call");
                mode = ToolChoiceMode.Named;
                break;
            default:
                throw new ApiException(StatusCodes.Status400BadRequest, "Invalid type for 'function_call': expected a string or an object.", param: "function_call", code: "invalid_type");
        }

        if (definitions.Count == 0)
        {
            if (mode is not null)
            {
                throw new ApiException(StatusCodes.Status400BadRequest,
                    "Invalid value for 'function_call': 'function_call' is only allowed when 'functions' are specified.", param: "function_call", code: "invalid_value");
            }
            return null;
        }
        RequireKnown(named, definitions, "function_call.name");
        return new ToolCallingRequest(definitions.Select(d => d.Function).ToArray(), JsonSerializer.SerializeToElement(templateTools),
            definitions.Select(d => $"{d.Param}.parameters").ToArray(), mode ?? ToolChoiceMode.Auto, named, Parallel: false, Legacy: true);
    }

    /// <summary>A function definition: <c>{"name", "description"?, "parameters"?, "strict"?}</c>.</summary>
    private static ToolFunction ReadFunction(JsonElement function, string param)
    {
        RequireKind(function, JsonValueKind.Object, param, "an object");
        string name = RequiredString(function, "name", param);
        if (name.Length > MaxNameLength)
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"Invalid '{param}.name': string too long. Expected a string with maximum length {MaxNameLength}, but got a string with length {name.Length} instead.",
                param: $"{param}.name", code: "string_above_max_length");
        }
        if (name.Length == 0 || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-'))
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"Invalid '{param}.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                param: $"{param}.name", code: "invalid_value");
        }
        if (function.TryGetProperty("description", out JsonElement description) && description.ValueKind is not JsonValueKind.Null)
        {
            RequireKind(description, JsonValueKind.String, $"{param}.description", "a string");
        }
        JsonElement? parameters = null;
        if (function.TryGetProperty("parameters", out JsonElement schema) && schema.ValueKind is not JsonValueKind.Null)
        {
            RequireKind(schema, JsonValueKind.Object, $"{param}.parameters", "an object");
            parameters = schema.Clone();
        }
        bool strict = false;
        if (function.TryGetProperty("strict", out JsonElement strictValue) && strictValue.ValueKind is not JsonValueKind.Null)
        {
            if (strictValue.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
            {
                throw new ApiException(StatusCodes.Status400BadRequest, $"Invalid type for '{param}.strict': expected a boolean.", param: $"{param}.strict", code: "invalid_type");
            }
            strict = strictValue.GetBoolean();
        }
        return new ToolFunction(name, parameters, strict);
    }

    private static void RequireUniqueNames(List<(ToolFunction Function, string Param)> definitions)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach ((ToolFunction function, string param) in definitions)
        {
            if (!seen.Add(function.Name))
            {
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"Invalid '{param}.name': the function name '{function.Name}' is used more than once; names must be unique.", param: $"{param}.name", code: "invalid_value");
            }
        }
    }

    private static void RequireKnown(string? named, List<(ToolFunction Function, string Param)> definitions, string param)
    {
        if (named is not null && !definitions.Any(d => d.Function.Name == named))
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"Invalid value for '{param}': no function named '{named}' is among the offered functions.", param: param, code: "invalid_value");
        }
    }

    private static bool IsPresent(JsonElement value) =>
        value.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null) && !(value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 0);

    private static string RequiredString(JsonElement item, string name, string param)
    {
        if (!item.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            throw Missing($"{param}.{name}");
        }
        RequireKind(value, JsonValueKind.String, $"{param}.{name}", "a string");
        return value.GetString()!;
    }

    private static void RequireKind(JsonElement value, JsonValueKind kind, string param, string expected)
    {
        if (value.ValueKind != kind)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, $"Invalid type for '{param}': expected {expected}.", param: param, code: "invalid_type");
        }
    }

    private static ApiException Missing(string param) =>
        new(StatusCodes.Status400BadRequest, $"Missing required parameter: '{param}'.", param: param, code: "missing_required_parameter");

    private static ApiException InvalidValue(string param, string value, string[] supported) =>
        new(StatusCodes.Status400BadRequest,
            $"Invalid value for '{param}': '{value}'. Supported values are: {string.Join(", ", supported.Select(s => $"'{s}'"))}.",
            param: param, code: "invalid_value");
}
