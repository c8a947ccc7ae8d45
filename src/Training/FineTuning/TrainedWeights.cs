using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Training.FineTuning;

/// <summary>What a run trains: a LoRA adapter on the frozen base, or a whole copy of the base.</summary>
internal abstract class TrainedWeights : IDisposable
{
    /// <summary>"lora" or "full", as trainer_state.json records it.</summary>
    public abstract string Kind { get; }

    public abstract IReadOnlyList<Parameter> Parameters { get; }

    /// <summary>(B, T) ids in, (B, T, V) logits out, recording autograd when grad is enabled.</summary>
    public abstract Tensor Logits(Tensor inputIds);

    /// <summary>Writes the trained model into <paramref name="directory"/>, which must not exist yet.</summary>
    public abstract void SaveModel(string directory);

    public abstract void Dispose();
}
