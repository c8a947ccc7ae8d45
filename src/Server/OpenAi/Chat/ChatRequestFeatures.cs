using System.Text.Json;

namespace LlmServer.OpenAi.Chat;

/// <summary>
/// The parts of a chat request that ask for more than plain text generation (tool calling and
/// response_format aside: ToolCalling and StructuredOutputs read them): audio, reasoning, web search, moderation. OpenAI answers 400 when a
/// model lacks the feature, and so does this server, naming the parameter; ignoring them would hide
/// the client's mistake behind a 200 that did not do what was asked. What asks for nothing beyond
/// plain text (modalities ["text"], verbosity "medium", reasoning
/// effort "none") is accepted, and the accepted-without-effect fields get their values checked.
/// </summary>
public static class ChatRequestFeatures
{
    public static void Check(ChatCompletionRequest request)
    {
        CheckOutput(request);
        CheckAcceptedFields(request);
    }

    private static void CheckOutput(ChatCompletionRequest request)
    {
        for (int i = 0; i < (request.Modalities?.Count ?? 0); i++)
        {
            string modality = request.Modalities![i];
            if (modality == "audio")
            {
                throw Unsupported("modalities", "unsupported_value", "This model produces text only: modalities may only be [\"text\"].");
            }
            if (modality != "text")
            {
                throw InvalidValue($"modalities[{i}]", modality, ["text", "audio"]);
            }
        }
        if (request.Audio.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            throw Unsupported("audio", "unsupported_parameter", "Unsupported parameter: 'audio' is not supported with this model: it produces text only.");
        }
        switch (request.ReasoningEffort)
        {
            // The model does not reason, which is what "none" asks for.
            case null or "none":
                break;
            case "minimal" or "low" or "medium" or "high" or "xhigh" or "max":
                throw Unsupported("reasoning_effort", "unsupported_parameter",
                    "Unsupported parameter: 'reasoning_effort' is not supported with this model: it does not reason (only \"none\" is accepted).");
            default:
                throw InvalidValue("reasoning_effort", request.ReasoningEffort, ["none", "minimal", "low", "medium", "high", "xhigh", "max"]);
        }
        switch (request.Verbosity)
        {
            case null or "medium":
                break;
            case "low" or "high":
                throw Unsupported("verbosity", "unsupported_value",
                    $"Unsupported value: 'verbosity' does not support '{request.Verbosity}' with this model. Supported values are: 'medium'.");
            default:
                throw InvalidValue("verbosity", request.Verbosity, ["low", "medium", "high"]);
        }
        if (request.WebSearchOptions.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            throw Unsupported("web_search_options", "unsupported_parameter", "Unsupported parameter: 'web_search_options': web search is not supported by this model.");
        }
        if (request.Moderation.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            throw Unsupported("moderation", "unsupported_parameter", "Unsupported parameter: 'moderation': this server runs no moderation.");
        }
    }

    /// <summary>Fields that change nothing here still take only the values OpenAI takes, so a typo shows.</summary>
    private static void CheckAcceptedFields(ChatCompletionRequest request)
    {
        if (request.ServiceTier is { } tier && tier is not ("auto" or "default" or "flex" or "scale" or "priority" or "fast"))
        {
            throw InvalidValue("service_tier", tier, ["auto", "default", "flex", "scale", "priority", "fast"]);
        }
        if (request.PromptCacheRetention is { } retention && retention is not ("in_memory" or "24h"))
        {
            throw InvalidValue("prompt_cache_retention", retention, ["in_memory", "24h"]);
        }
        if (request.Prediction.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            RequireKind(request.Prediction, JsonValueKind.Object, "prediction", "an object");
        }
        if (request.PromptCacheOptions.ValueKind is not (JsonValueKind.Undefined or JsonValueKind.Null))
        {
            RequireKind(request.PromptCacheOptions, JsonValueKind.Object, "prompt_cache_options", "an object");
        }
    }

    private static void RequireKind(JsonElement value, JsonValueKind kind, string param, string expected)
    {
        if (value.ValueKind != kind)
        {
            throw new ApiException(StatusCodes.Status400BadRequest, $"Invalid type for '{param}': expected {expected}.", param: param, code: "invalid_type");
        }
    }

    private static ApiException InvalidValue(string param, string value, string[] supported) =>
        new(StatusCodes.Status400BadRequest,
            $"Invalid value for '{param}': '{value}'. Supported values are: {string.Join(", ", supported.Select(s => $"'{s}'"))}.",
            param: param, code: "invalid_value");

    private static ApiException Unsupported(string param, string code, string message) =>
        new(StatusCodes.Status400BadRequest, message, param: param, code: code);
}
