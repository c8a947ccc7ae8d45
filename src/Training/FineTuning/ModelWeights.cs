using LlmServer.Inference.Models;
using TorchSharp.Modules;
using static TorchSharp.torch.nn;

namespace LlmServer.Training.FineTuning;

/// <summary>The trainable parameters of a model of any architecture.</summary>
internal static class ModelWeights
{
    /// <summary>Every parameter, as the module tree holds them (each architecture's model is a TorchSharp module).</summary>
    public static IEnumerable<Parameter> Weights(this ICausalLanguageModel model) =>
        model is Module module
            ? module.parameters()
            : throw new ArgumentException($"a {model.Shape.ModelType} model that is not a module has no parameters to train", nameof(model));
}
