using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models.Lora;
using LlmServer.Training.Data;
using LlmServer.Training.FineTuning;
using static TorchSharp.torch;

namespace LlmServer.Training.Tests.FineTuning;

/// <summary>Tensor.TotalCount is process-wide, so nothing else may make tensors while it is compared.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TensorCountingCollection
{
    public const string Name = "Tensor counting";
}

/// <summary>Cancelling is disposing: the engine thread must get back every tensor a run made.</summary>
[Collection(TensorCountingCollection.Name)]
public sealed class RunDisposalTests : IDisposable
{
    private readonly string _output = Directory.CreateTempSubdirectory("fine-tune-dispose-").FullName;

    public void Dispose() => Directory.Delete(_output, recursive: true);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Disposing_a_run_midway_frees_every_tensor_it_made(bool lora)
    {
        using Gpt2Model baseModel = CheckpointLoader.Load(AnimalSoundTask.ModelDirectory, ScalarType.Float32, CPU);
        var settings = new TrainingSettings
        {
            Epochs = 2,
            BatchSize = 4,
            LearningRate = 1e-3,
            MicroBatchTokens = 16,
            Lora = lora ? new LoraSettings(4, 8, ["c_attn", "c_fc"]) : null,
        };
        TrainingDataset training = AnimalSoundTask.Dataset(12, heldOut: false, seed: 1);
        TrainingDataset validation = AnimalSoundTask.Dataset(4, heldOut: true, seed: 2);
        long before = LiveTensors();

        var run = FineTuningRun.Start(new FineTuningInputs(baseModel, AnimalSoundTask.ModelDirectory, training, validation, settings, _output));
        // Past a checkpoint and into a batch, so that moments, gradients and half a batch exist.
        RunDriver.RunUntil(run, e => e is CheckpointSaved);
        run.RunSlice();
        Assert.True(Tensor.TotalCount > before);
        run.Dispose();

        // TorchSharp's Parameter constructor takes the native handle out of the tensor it wraps
        // without lowering Tensor.TotalCount, so each parameter the run built stays counted once
        // (no native memory is held by that emptied wrapper). Everything else must be gone.
        int parametersBuilt = lora ? settings.Lora!.TargetedPaths(baseModel.AdaptableLayers).Count * 2 : baseModel.parameters().Count();
        Assert.Equal(before + parametersBuilt, LiveTensors());
    }

    /// <summary>Tensors still alive once those already unreachable are finalized (TotalCount drops when a finalizer runs).</summary>
    private static long LiveTensors()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return Tensor.TotalCount;
    }
}
