using LlmServer.Inference.Sampling;

namespace LlmServer.OpenAi.Models;

public sealed record ModelList(IReadOnlyList<ModelCard> Data)
{
    public string Object => "list";
}

/// <summary>
/// OpenAI's Model object, plus vLLM's max_model_len, root (the served model a name resolves to:
/// itself, or an alias's target) and parent (the base an adapter runs on), and alias_of for a name
/// that points at another model. <see cref="Path"/>, where the weights were read from, is shown on
/// the admin API only: server paths are not for every holder of the inference key.
/// </summary>
public sealed record ModelCard(string Id, long Created, string OwnedBy, int MaxModelLen, string Root, string? Parent = null, string? AliasOf = null)
{
    public string Object => "model";

    public string? Path { get; init; }

    /// <summary>What a chat request that leaves a sampling parameter out gets on this model (an extension, like max_model_len).</summary>
    public DefaultSamplingParams? DefaultSamplingParams { get; init; }
}

/// <summary>
/// The sampling a chat request gets for each parameter it leaves out: generation_config.json's values under
/// <c>--generation-config auto</c>, the neutral ones under <c>vllm</c>. Named after vLLM's
/// <c>default_sampling_params</c>, which holds the same values but does not show them; a client (the
/// playground) needs them to say what "the model's default" is. <see cref="MaxTokens"/> is null when a reply
/// may run until the context window is full.
/// </summary>
public sealed record DefaultSamplingParams(double Temperature, double TopP, int TopK, int? MaxTokens)
{
    public static DefaultSamplingParams From(GenerationDefaults defaults) =>
        new(defaults.TemperatureFor(null), defaults.TopPFor(null), defaults.TopKFor(null), defaults.MaxTokens);
}
