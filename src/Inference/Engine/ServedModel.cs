using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Engine;

/// <summary>How a served model's weights are held.</summary>
public enum ServedModelKind
{
    /// <summary>A whole model of its own (the one served at start, a loaded checkpoint, a full fine-tune).</summary>
    Full,
    /// <summary>A LoRA adapter applied on top of a full model's weights, which it shares.</summary>
    Adapter,
}

/// <summary>What the API layer needs to know about one served model; no tensors.</summary>
/// <param name="WeightsId">
/// Identifies the loaded weights, never reused in this process: a request is bound to it, so it runs
/// wholly on the weights it was admitted with even if its name is pointed elsewhere meanwhile.
/// </param>
/// <param name="Parent">For an adapter, the name of the model it sits on.</param>
public sealed record ServedModel(
    string Name,
    string Directory,
    ModelShape Shape,
    ITokenizer Tokenizer,
    ChatPromptFormatter ChatFormatter,
    int MaxModelLen,
    DateTimeOffset LoadedAt)
{
    public int WeightsId { get; init; }
    public ServedModelKind Kind { get; init; } = ServedModelKind.Full;
    public string? Parent { get; init; }

    /// <summary>The layers a LoRA adapter on this model can target (an adapter's are its base's).</summary>
    public required AdaptableLayers AdaptableLayers { get; init; }

    /// <summary>generation_config.json's sampling defaults, read at load; an adapter has its base model's.</summary>
    public GenerationDefaults GenerationDefaults { get; init; } = GenerationDefaults.None;

    /// <summary>OpenAI's system_fingerprint: names the exact weights that produced a response.</summary>
    public string Fingerprint => $"fp_w{WeightsId}";
}
