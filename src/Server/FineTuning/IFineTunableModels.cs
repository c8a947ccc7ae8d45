namespace LlmServer.FineTuning;

/// <summary>A base model a job may fine-tune: the name clients give as "model", and its Hugging Face directory.</summary>
public sealed record FineTunableModel(string Name, string Directory);

/// <summary>Which base models this server can fine-tune.</summary>
public interface IFineTunableModels
{
    /// <summary>The model clients call <paramref name="name"/>, or null when there is none to fine-tune.</summary>
    FineTunableModel? Find(string name);
}
