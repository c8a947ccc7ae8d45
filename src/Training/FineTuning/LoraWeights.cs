using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Training.FineTuning;

/// <summary>
/// A LoRA adapter over the serving base. The base's parameters are set not to require gradients:
/// backward then never computes or stores a gradient for them and the optimizer never sees them,
/// so the weights serving uses stay bit-identical. They are left that way afterwards; serving runs
/// under inference mode and never needs gradients.
/// </summary>
internal sealed class LoraWeights : TrainedWeights
{
    private readonly ICausalLanguageModel _base;
    private readonly LoraAdapter _adapter;
    private readonly AdapterRouting _routing;
    private readonly string _baseModelName;

    private LoraWeights(ICausalLanguageModel baseModel, LoraAdapter adapter, string baseModelName)
    {
        _base = baseModel;
        _adapter = adapter;
        _baseModelName = baseModelName;
        _routing = AdapterRouting.ForAllRows(adapter);
        foreach (Parameter weight in baseModel.Weights())
        {
            weight.requires_grad = false;
        }
        Parameters = adapter.parameters().ToList();
    }

    public static LoraWeights Create(ICausalLanguageModel baseModel, LoraSettings settings, long seed, string baseModelName)
    {
        using var generator = new Generator(unchecked((ulong)seed), baseModel.Device);
        return new LoraWeights(baseModel, LoraAdapter.Create(baseModel.AdaptableLayers, settings, baseModel.Dtype, baseModel.Device, generator), baseModelName);
    }

    public static LoraWeights Load(ICausalLanguageModel baseModel, string checkpointDirectory, string baseModelName) =>
        new(baseModel, PeftAdapterFiles.Load(checkpointDirectory, baseModel), baseModelName);

    public LoraAdapter Adapter => _adapter;

    public override string Kind => "lora";

    public override IReadOnlyList<Parameter> Parameters { get; }

    public override Tensor Logits(Tensor inputIds) => _base.ForwardTraining(inputIds, _routing);

    public override void SaveModel(string directory) => PeftAdapterFiles.Save(_adapter, directory, _baseModelName);

    public override void Dispose()
    {
        _routing.Dispose();
        _adapter.Dispose();
    }
}
