using System.Text.Json;
using System.Text.RegularExpressions;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.StructuredOutput;

namespace LlmServer.OpenAi.StructuredOutputs;

/// <summary>
/// <c>response_format</c> on chat and completions: "text" leaves the output free; "json_object" holds it to a JSON
/// object and "json_schema" to the documents of its schema, by constrained decoding, so the reply parses and
/// validates whatever the model's weights. Schemas compile once (<see cref="JsonGrammarCache"/>); one outside the
/// supported subset is a 400 naming the keyword and where it sits.
/// </summary>
public sealed partial class ResponseFormats(JsonGrammarCache grammars)
{
    /// <summary>The constraint <paramref name="format"/> asks for; null for none or "text".</summary>
    public GrammarConstraint? Parse(JsonElement format)
    {
        if (format.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null)
        {
            return null;
        }

        Require(format.ValueKind == JsonValueKind.Object, "response_format", "Invalid type for 'response_format': expected an object.", "invalid_type");
        Require(format.TryGetProperty("type", out JsonElement type), "response_format.type",
            "Missing required parameter: 'response_format.type'.", "missing_required_parameter");
        Require(type.ValueKind == JsonValueKind.String, "response_format.type", "Invalid type for 'response_format.type': expected a string.", "invalid_type");
        switch (type.GetString())
        {
            case "text":
                return null;
            case "json_object":
                return new GrammarConstraint(JsonGrammar.AnyObject);
            case "json_schema":
                return new GrammarConstraint(JsonSchema(format));
            default:
                throw new ApiException(StatusCodes.Status400BadRequest,
                    $"Invalid value for 'response_format.type': '{type.GetString()}'. Supported values are: 'text', 'json_object', 'json_schema'.",
                    param: "response_format.type", code: "invalid_value");
        }
    }

    /// <summary>
    /// <paramref name="sampling"/> held to <paramref name="constraint"/>. The model's token trie is built here, on the
    /// request's thread, the first time any request needs it, rather than on the engine thread every request waits on.
    /// </summary>
    public static SamplingParameters Constrain(SamplingParameters sampling, GrammarConstraint? constraint, ServedModel model)
    {
        if (constraint is null)
        {
            return sampling;
        }

        TokenTrie.For(model.Tokenizer);
        return sampling with { Constraint = constraint };
    }

    private JsonGrammar JsonSchema(JsonElement format)
    {
        Require(format.TryGetProperty("json_schema", out JsonElement definition), "response_format.json_schema",
            "Missing required parameter: 'response_format.json_schema'.", "missing_required_parameter");
        Require(definition.ValueKind == JsonValueKind.Object, "response_format.json_schema",
            "Invalid type for 'response_format.json_schema': expected an object.", "invalid_type");
        Require(definition.TryGetProperty("name", out JsonElement nameElement), "response_format.json_schema.name",
            "Missing required parameter: 'response_format.json_schema.name'.", "missing_required_parameter");
        string? name = nameElement.ValueKind == JsonValueKind.String ? nameElement.GetString() : null;
        Require(name is not null && SchemaName().IsMatch(name), "response_format.json_schema.name",
            "Invalid 'response_format.json_schema.name': it must be 1 to 64 letters, digits, underscores or dashes.", "invalid_value");

        bool strict = false;
        if (definition.TryGetProperty("strict", out JsonElement strictElement) && strictElement.ValueKind != JsonValueKind.Null)
        {
            Require(strictElement.ValueKind is JsonValueKind.True or JsonValueKind.False, "response_format.json_schema.strict",
                "Invalid type for 'response_format.json_schema.strict': expected a boolean.", "invalid_type");
            strict = strictElement.GetBoolean();
        }

        if (!definition.TryGetProperty("schema", out JsonElement schema) || schema.ValueKind == JsonValueKind.Null)
        {
            return JsonGrammar.AnyObject; // OpenAI's schema is optional: without one, any JSON object
        }

        Require(schema.ValueKind == JsonValueKind.Object, "response_format.json_schema.schema",
            "Invalid type for 'response_format.json_schema.schema': expected an object.", "invalid_type");
        try
        {
            return grammars.GetOrCompile(schema, strict);
        }
        catch (SchemaNotSupportedException e)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, $"Invalid schema for response_format '{name}': {e.Message}",
                param: "response_format", code: "invalid_json_schema");
        }
    }

    private static void Require(bool condition, string param, string message, string code)
    {
        if (!condition)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, message, param: param, code: code);
        }
    }

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$")]
    private static partial Regex SchemaName();
}

public static class StructuredOutputServices
{
    /// <summary>One grammar cache for the process: response_format and tool calls compile each schema once.</summary>
    public static IServiceCollection AddStructuredOutputs(this IServiceCollection services) =>
        services.AddSingleton(new JsonGrammarCache()).AddSingleton<ResponseFormats>();
}
