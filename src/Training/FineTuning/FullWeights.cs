using LlmServer.Inference.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Training.FineTuning;

/// <summary>
/// Every weight of a float32 copy of the base, loaded again from its directory whatever its
/// architecture: the serving model (maybe half precision, maybe with packed serving copies) is never
/// touched. The result is written by the same <see cref="CheckpointWriter"/> as every checkpoint.
/// </summary>
internal sealed class FullWeights : TrainedWeights
{
    private readonly ICausalLanguageModel _model;
    private readonly string _tokenizerDirectory;

    private FullWeights(ICausalLanguageModel model, string tokenizerDirectory)
    {
        _model = model;
        _tokenizerDirectory = tokenizerDirectory;
        Parameters = model.Weights().ToList();
    }

    /// <summary>Loads the model in <paramref name="modelDirectory"/> (the base, or a checkpoint to resume) for training.</summary>
    public static FullWeights Load(string modelDirectory, Device device, string tokenizerDirectory)
    {
        ICausalLanguageModel model = ModelArchitectures.Load(modelDirectory, ScalarType.Float32, device);
        foreach (Parameter weight in model.Weights())
        {
            weight.requires_grad = true;
        }
        return new FullWeights(model, tokenizerDirectory);
    }

    public ICausalLanguageModel Model => _model;

    public override string Kind => "full";

    public override IReadOnlyList<Parameter> Parameters { get; }

    public override Tensor Logits(Tensor inputIds) => _model.ForwardTraining(inputIds);

    public override void SaveModel(string directory) => CheckpointWriter.WriteInto(directory, _model, _tokenizerDirectory);

    public override void Dispose() => _model.Dispose();
}
