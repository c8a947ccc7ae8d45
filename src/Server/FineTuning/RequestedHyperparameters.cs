using System.Text.Json;
using LlmServer.Inference.Models.Lora;
using LlmServer.OpenAi;
using LlmServer.Storage;

namespace LlmServer.FineTuning;

/// <summary>A hyperparameter as given, and the request field it came from (for the error that names it).</summary>
public sealed record Given<T>(T Value, string Param);

/// <summary>
/// The hyperparameters of a create request, each absent (null), "auto" or a checked value. OpenAI
/// takes them in two places, the deprecated top-level <c>hyperparameters</c> and
/// <c>method.supervised.hyperparameters</c>; a value may be given in either, or in both if it agrees.
/// </summary>
public sealed record RequestedHyperparameters(
    Given<HyperparameterValue>? NEpochs,
    Given<HyperparameterValue>? BatchSize,
    Given<HyperparameterValue>? LearningRateMultiplier,
    Given<HyperparameterValue>? LoraRank,
    Given<HyperparameterValue>? LoraAlpha,
    Given<IReadOnlyList<string>>? LoraTargetModules)
{
    public const int DefaultLoraRank = 8;
    private static readonly RequestedHyperparameters None = new(null, null, null, null, null, null);

    /// <summary>Checks one placement's values; <paramref name="prefix"/> is its path in the request.</summary>
    public static RequestedHyperparameters Parse(FineTuningHyperparametersRequest? request, string prefix)
    {
        if (request is null)
        {
            return None;
        }
        if (request.Unknown is { Count: > 0 } unknown)
        {
            string name = unknown.Keys.First();
            throw ApiException.InvalidParameter($"{prefix}.{name}",
                $"Unknown hyperparameter '{name}'. This server takes n_epochs, batch_size, learning_rate_multiplier, lora_rank, lora_alpha and lora_target_modules.");
        }
        return new RequestedHyperparameters(
            Integer(request.NEpochs, $"{prefix}.n_epochs", 1, 50),
            Integer(request.BatchSize, $"{prefix}.batch_size", 1, 256),
            Positive(request.LearningRateMultiplier, $"{prefix}.learning_rate_multiplier", 100),
            Integer(request.LoraRank, $"{prefix}.lora_rank", 0, 256),
            Positive(request.LoraAlpha, $"{prefix}.lora_alpha", 65536),
            Modules(request.LoraTargetModules, $"{prefix}.lora_target_modules"));
    }

    /// <summary>One set from both placements; a value given in both must agree.</summary>
    public RequestedHyperparameters Merge(RequestedHyperparameters other) => new(
        Pick(NEpochs, other.NEpochs, (a, b) => a == b),
        Pick(BatchSize, other.BatchSize, (a, b) => a == b),
        Pick(LearningRateMultiplier, other.LearningRateMultiplier, (a, b) => a == b),
        Pick(LoraRank, other.LoraRank, (a, b) => a == b),
        Pick(LoraAlpha, other.LoraAlpha, (a, b) => a == b),
        Pick(LoraTargetModules, other.LoraTargetModules, (a, b) => a.SequenceEqual(b)));

    /// <summary>OpenAI's three, with "auto" (null) left for the worker to resolve from the data.</summary>
    public JobHyperparameters ToJobHyperparameters() => new(
        (int?)NEpochs?.Value.Number, (int?)BatchSize?.Value.Number, LearningRateMultiplier?.Value.Number);

    /// <summary>
    /// LoRA settings with their defaults filled in now, since they do not depend on the data: rank 8,
    /// alpha twice the rank, adapters on every projection of a block (<see cref="AdaptableLayers.DefaultTargetModules"/>:
    /// GPT-2's c_attn, c_proj and c_fc; the Llama family's q, k, v, o, gate, up and down projections).
    /// Rank 0 is a full fine-tune, which has no alpha or modules.
    /// </summary>
    /// <param name="model">The base's adaptable layers, which the target modules must match.</param>
    public LoraSettings ToLoraSettings(AdaptableLayers model)
    {
        int rank = LoraRank?.Value.Number is double given ? (int)given : DefaultLoraRank;
        if (rank == 0)
        {
            if (LoraAlpha is { Value.IsAuto: false } alpha)
            {
                throw ApiException.InvalidParameter(alpha.Param, "lora_alpha applies to LoRA adapters; lora_rank 0 is a full fine-tune.");
            }
            if (LoraTargetModules is { } modules)
            {
                throw ApiException.InvalidParameter(modules.Param, "lora_target_modules applies to LoRA adapters; lora_rank 0 is a full fine-tune.");
            }
            return new LoraSettings(0, 0, []);
        }
        var settings = new LoraSettings(rank, LoraAlpha?.Value.Number ?? 2.0 * rank, LoraTargetModules?.Value ?? model.DefaultTargetModules);
        try
        {
            settings.TargetedPaths(model);
        }
        catch (ArgumentException e) when (LoraTargetModules is { } modules)
        {
            string reason = e.Message.Split(" (Parameter")[0];
            throw ApiException.InvalidParameter(modules.Param, $"{modules.Param}: {reason}.");
        }
        return settings;
    }

    private static Given<T>? Pick<T>(Given<T>? top, Given<T>? method, Func<T, T, bool> agree)
    {
        if (top is null || method is null)
        {
            return top ?? method;
        }
        if (!agree(top.Value, method.Value))
        {
            throw ApiException.InvalidParameter(method.Param,
                $"{top.Param} and {method.Param} disagree ({Describe(top.Value)} and {Describe(method.Value)}); give it in one place, preferably method.");
        }
        return method;
    }

    private static string Describe<T>(T value) => value is IEnumerable<string> names ? $"[{string.Join(", ", names)}]" : $"{value}";

    private static bool IsAbsent(JsonElement value) => value.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null;

    private static bool IsAuto(JsonElement value) => value.ValueKind == JsonValueKind.String && value.ValueEquals("auto");

    private static Given<HyperparameterValue>? Integer(JsonElement value, string param, int min, int max)
    {
        if (IsAbsent(value))
        {
            return null;
        }
        if (IsAuto(value))
        {
            return new(HyperparameterValue.Auto, param);
        }
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int number) && number >= min && number <= max)
        {
            return new(new HyperparameterValue(number), param);
        }
        throw ApiException.InvalidParameter(param, $"{param} must be \"auto\" or an integer from {min} to {max}.");
    }

    private static Given<HyperparameterValue>? Positive(JsonElement value, string param, double max)
    {
        if (IsAbsent(value))
        {
            return null;
        }
        if (IsAuto(value))
        {
            return new(HyperparameterValue.Auto, param);
        }
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double number) && number > 0 && number <= max)
        {
            return new(new HyperparameterValue(number), param);
        }
        throw ApiException.InvalidParameter(param, $"{param} must be \"auto\" or a number greater than 0 and at most {max}.");
    }

    /// <summary>Module names as PEFT's target_modules; whether they match a layer of the base is checked in <see cref="ToLoraSettings"/>.</summary>
    private static Given<IReadOnlyList<string>>? Modules(JsonElement value, string param)
    {
        if (IsAbsent(value))
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.Array)
        {
            throw ApiException.InvalidParameter(param, $"{param} must be a list of module names, such as [\"q_proj\", \"v_proj\"].");
        }
        var modules = new List<string>();
        foreach (JsonElement item in value.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String || item.GetString() is not { Length: > 0 } name)
            {
                throw ApiException.InvalidParameter(param, $"{param} has '{item}', which is not a module name.");
            }
            if (!modules.Contains(name))
            {
                modules.Add(name);
            }
        }
        if (modules.Count == 0)
        {
            throw ApiException.InvalidParameter(param, $"{param} must name at least one module; use lora_rank 0 for a full fine-tune.");
        }
        return new(modules, param);
    }
}
