using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;

namespace LlmServer.OpenAi.Generation;

/// <summary>
/// Checks the sampling fields of a request against OpenAI's documented ranges and builds the
/// engine's <see cref="SamplingParameters"/>. Every refusal names the offending parameter.
/// </summary>
public static class SamplingRequestParser
{
    public const int MaxChoices = 64;
    public const int MaxLogprobs = 20;
    public const int MaxStopStrings = 16;

    /// <param name="defaults">What a parameter the request leaves out becomes (generation_config.json's recommendation, or none).</param>
    /// <param name="promptLength">Tokens in the prompt, to check the context window.</param>
    /// <param name="defaultMaxTokens">null means "the rest of the context window".</param>
    /// <param name="maxTokensParam">Which field <paramref name="requestedMaxTokens"/> came from (chat's max_completion_tokens or max_tokens), for refusals.</param>
    public static SamplingParameters Parse(SamplingRequestFields fields, ServedModel model, GenerationDefaults defaults, int promptLength,
        int? requestedMaxTokens, int? defaultMaxTokens, int? logprobs, IReadOnlyList<string> implicitStops, string promptParam,
        string maxTokensParam = "max_tokens")
    {
        int room = model.MaxModelLen - promptLength;
        if (room <= 0)
        {
            throw PromptTooLong(model, promptLength, promptParam, countIsLowerBound: false);
        }
        if (requestedMaxTokens is < 1)
        {
            throw ApiException.InvalidParameter(maxTokensParam, $"{maxTokensParam} must be at least 1, got {requestedMaxTokens}.");
        }
        int maxTokens = requestedMaxTokens ?? Math.Min(defaultMaxTokens ?? room, room);
        if (maxTokens > room)
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                $"This model's maximum context length is {model.MaxModelLen} tokens. However, you requested {promptLength + maxTokens} tokens " +
                $"({promptLength} in the prompt, {maxTokens} for the completion). Please reduce the prompt or {maxTokensParam}.",
                param: maxTokensParam, code: "context_length_exceeded");
        }

        // The request's ranges are OpenAI's; a default from generation_config.json was checked when the model loaded.
        if (fields.Temperature is { } requestedTemperature)
        {
            Require(requestedTemperature is >= 0 and <= 2, "temperature", $"temperature must be between 0 and 2, got {requestedTemperature}.");
        }
        if (fields.TopP is { } requestedTopP)
        {
            Require(requestedTopP is > 0 and <= 1, "top_p", $"top_p must be in (0, 1], got {requestedTopP}.");
        }
        if (fields.TopK is { } requestedTopK)
        {
            Require(requestedTopK >= -1, "top_k", $"top_k must be -1 or 0 (off) or a positive count, got {requestedTopK}.");
        }
        double temperature = defaults.TemperatureFor(fields.Temperature);
        double topP = defaults.TopPFor(fields.TopP);
        int topK = defaults.TopKFor(fields.TopK);
        double presence = fields.PresencePenalty ?? 0;
        Require(presence is >= -2 and <= 2, "presence_penalty", $"presence_penalty must be between -2 and 2, got {presence}.");
        double frequency = fields.FrequencyPenalty ?? 0;
        Require(frequency is >= -2 and <= 2, "frequency_penalty", $"frequency_penalty must be between -2 and 2, got {frequency}.");
        int minTokens = fields.MinTokens ?? 0;
        Require(minTokens >= 0 && minTokens <= maxTokens, "min_tokens", $"min_tokens must be between 0 and {maxTokensParam} ({maxTokens}), got {minTokens}.");
        if (logprobs is not null)
        {
            Require(logprobs is >= 0 and <= MaxLogprobs, "logprobs", $"logprobs must be between 0 and {MaxLogprobs}, got {logprobs}.");
        }

        var tokenizer = model.Tokenizer;
        var logitBias = new Dictionary<int, double>();
        foreach ((string key, double bias) in fields.LogitBias ?? [])
        {
            Require(int.TryParse(key, out int token) && tokenizer.IsValidId(token), "logit_bias", $"logit_bias key '{key}' is not a token id of this model.");
            Require(bias is >= -100 and <= 100, "logit_bias", $"logit_bias values must be between -100 and 100, got {bias} for token {key}.");
            logitBias[int.Parse(key)] = bias;
        }
        foreach (int token in fields.StopTokenIds ?? [])
        {
            Require(tokenizer.IsValidId(token), "stop_token_ids", $"stop_token_ids contains {token}, which is not a token id of this model.");
        }

        return new SamplingParameters
        {
            Temperature = temperature,
            TopP = topP,
            TopK = Math.Max(topK, 0),
            Seed = fields.Seed,
            MaxTokens = maxTokens,
            MinTokens = minTokens,
            StopStrings = ParseStop(fields.Stop).Concat(implicitStops).Distinct().ToArray(),
            StopTokenIds = fields.StopTokenIds?.ToArray() ?? [],
            IgnoreEos = fields.IgnoreEos ?? false,
            PresencePenalty = presence,
            FrequencyPenalty = frequency,
            LogitBias = logitBias,
            Logprobs = logprobs,
        };
    }

    /// <param name="countIsLowerBound">The prompt was refused before it was fully encoded, so
    /// <paramref name="promptLength"/> is the least it can be, not its exact length.</param>
    public static ApiException PromptTooLong(ServedModel model, long promptLength, string promptParam, bool countIsLowerBound) =>
        new(StatusCodes.Status400BadRequest,
            $"This model's maximum context length is {model.MaxModelLen} tokens. However, your prompt has {(countIsLowerBound ? "at least " : "")}{promptLength} tokens. " +
            "Please shorten the prompt.", param: promptParam, code: "context_length_exceeded");

    public static int ParseChoiceCount(SamplingRequestFields fields)
    {
        int n = fields.N ?? 1;
        Require(n is >= 1 and <= MaxChoices, "n", $"n must be between 1 and {MaxChoices}, got {n}.");
        return n;
    }

    /// <summary>stop: a string, a list of strings, or null.</summary>
    public static IReadOnlyList<string> ParseStop(JsonElement stop)
    {
        switch (stop.ValueKind)
        {
            case JsonValueKind.Undefined or JsonValueKind.Null:
                return [];
            case JsonValueKind.String:
                string single = LargeJsonString.GetString(stop);
                Require(single.Length > 0, "stop", "stop strings must not be empty.");
                return [single];
            case JsonValueKind.Array:
                var stops = new List<string>();
                foreach (JsonElement item in stop.EnumerateArray())
                {
                    string? text = item.ValueKind == JsonValueKind.String ? LargeJsonString.GetString(item) : null;
                    Require(text is { Length: > 0 }, "stop", "stop must be a string or a list of non-empty strings.");
                    stops.Add(text!);
                }
                Require(stops.Count <= MaxStopStrings, "stop", $"stop may list at most {MaxStopStrings} strings.");
                return stops;
            default:
                throw ApiException.InvalidParameter("stop", "stop must be a string or a list of strings.");
        }
    }

    public static void Require(bool condition, string param, string message)
    {
        if (!condition)
        {
            throw ApiException.InvalidParameter(param, message);
        }
    }
}
