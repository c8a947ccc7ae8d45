using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Training.FineTuning;

/// <summary>
/// Every weight of a float32 copy of the base, loaded again from its directory: the serving model
/// (maybe half precision, maybe with packed serving copies) is never touched.
/// </summary>
internal sealed class FullWeights : TrainedWeights
{
    private readonly Gpt2Model _model;
    private readonly string _tokenizerDirectory;

    private FullWeights(Gpt2Model model, string tokenizerDirectory)
    {
        _model = model;
        _tokenizerDirectory = tokenizerDirectory;
        Parameters = model.parameters().ToList();
    }

    /// <summary>Loads the model in <paramref name="modelDirectory"/> (the base, or a checkpoint to resume) for training.</summary>
    public static FullWeights Load(string modelDirectory, Device device, string tokenizerDirectory)
    {
        Gpt2Model model = CheckpointLoader.Load(modelDirectory, ScalarType.Float32, device);
        foreach (Parameter weight in model.parameters())
        {
            weight.requires_grad = true;
        }
        return new FullWeights(model, tokenizerDirectory);
    }

    public Gpt2Model Model => _model;

    public override string Kind => "full";

    public override IReadOnlyList<Parameter> Parameters { get; }

    public override Tensor Logits(Tensor inputIds) => _model.ForwardTraining(inputIds);

    public override void SaveModel(string directory) => CheckpointWriter.WriteInto(directory, _model, _tokenizerDirectory);

    public override void Dispose() => _model.Dispose();
}
