using LlmServer.Inference.Models.Lora;

namespace LlmServer.FineTuning;

/// <summary>A base model a job may fine-tune: the name clients give as "model", its Hugging Face directory, and the layers a LoRA job can target.</summary>
public sealed record FineTunableModel(string Name, string Directory, AdaptableLayers AdaptableLayers);

/// <summary>Which base models this server can fine-tune.</summary>
public interface IFineTunableModels
{
    /// <summary>The model clients call <paramref name="name"/>, or null when there is none to fine-tune.</summary>
    FineTunableModel? Find(string name);
}
