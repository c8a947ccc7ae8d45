using LlmServer.Inference.Models;
using LlmServer.Training.Data;

namespace LlmServer.Training.FineTuning;

/// <summary>Everything a <see cref="FineTuningRun"/> trains from and writes to.</summary>
/// <param name="BaseModel">The serving model, of any architecture. A LoRA run trains an adapter on it without changing it; a full run trains a copy loaded from <paramref name="BaseModelDirectory"/>.</param>
/// <param name="BaseModelDirectory">The base's Hugging Face directory: tokenizer files for full checkpoints, the weights a full run starts from.</param>
/// <param name="OutputDirectory">Receives checkpoints/step-N/ after every epoch and final/ at the end.</param>
public sealed record FineTuningInputs(
    ICausalLanguageModel BaseModel,
    string BaseModelDirectory,
    TrainingDataset Training,
    TrainingDataset? Validation,
    TrainingSettings Settings,
    string OutputDirectory)
{
    /// <summary>base_model_name_or_path in a LoRA checkpoint's adapter_config.json; the base directory when null.</summary>
    public string? BaseModelName { get; init; }
}
