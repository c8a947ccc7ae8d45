using LlmServer.Inference.Models;
using LlmServer.Training.Batching;
using LlmServer.Training.Checkpoints;
using LlmServer.Training.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Training.FineTuning;

/// <summary>
/// A fine-tuning run cut into slices, so that the engine thread can interleave it with serving
/// steps: the caller calls <see cref="RunSlice"/> until <see cref="IsCompleted"/>. A slice is one
/// forward and backward pass over a micro-batch, one optimizer step, one validation pass, one
/// checkpoint write or the final copy. Create, run and dispose a run on one thread (TorchSharp's
/// dispose scopes and grad modes are per thread); nothing here starts a thread.
/// To cancel, stop calling <see cref="RunSlice"/> and dispose the run: every tensor it made is freed.
/// A slice that throws (a full disk, a diverging loss) leaves the run unusable: dispose it.
/// Call <see cref="Start"/> and <see cref="Resume"/> outside any dispose scope, as the engine loads
/// its model: weights and optimizer state created inside one would be freed when it closes.
/// </summary>
public sealed class FineTuningRun : IDisposable
{
    private enum Phase { Training, Stepping, Validating, Checkpointing, Finishing, Completed }

    private readonly FineTuningInputs _inputs;
    private readonly TrainingSettings _settings;
    private readonly TrainedWeights _weights;
    private readonly AdamW _optimizer;
    private readonly LearningRateSchedule _schedule;
    private readonly IReadOnlyList<TrainingExample> _examples;
    private readonly IReadOnlyList<TrainingExample> _validationExamples;
    private readonly List<TrainerState.LogEntry> _history;
    private readonly Device _device;

    private Phase _phase;
    private int _epoch;
    private IReadOnlyList<int[]> _batches = [];
    private int _batchIndex;
    private IReadOnlyList<int[]> _microBatches = [];
    private int _microBatchIndex;
    private int _batchTrainedTokens;
    private double _batchLossSum;
    private long _batchCorrect;
    private IReadOnlyList<int[]> _validationPasses = [];
    private int _validationIndex;
    private double _validationLossSum;
    private long _validationCorrect;
    private long _validationTokens;
    private bool _disposed;

    private FineTuningRun(FineTuningInputs inputs, TrainedWeights weights, TrainerState? resumed)
    {
        _inputs = inputs;
        _settings = inputs.Settings;
        _weights = weights;
        _device = inputs.BaseModel.Device;
        _examples = inputs.Training.Examples;
        _validationExamples = inputs.Validation?.Examples ?? [];
        StepsPerEpoch = BatchPlanner.BatchesPerEpoch(_examples.Count, _settings.BatchSize);
        TotalSteps = StepsPerEpoch * _settings.Epochs;
        _schedule = _settings.Schedule(TotalSteps);
        _optimizer = TrainingOptimizer.Create(weights.Parameters, _settings.LearningRate, _settings.WeightDecay);
        _history = resumed?.LogHistory.ToList() ?? [];
        Step = resumed?.OptimizerStep ?? 0;
        TrainedTokens = resumed?.TrainedTokens ?? 0;
        _epoch = resumed?.CompletedEpochs ?? 0;
        if (_epoch < _settings.Epochs)
        {
            BeginEpoch();
        }
        else
        {
            _phase = Phase.Finishing;
        }
    }

    /// <summary>Starts a run from the base model.</summary>
    /// <exception cref="ArgumentException">The settings or data cannot make a run; the message says why.</exception>
    public static FineTuningRun Start(FineTuningInputs inputs)
    {
        Validate(inputs);
        using var notInference = inference_mode(false);
        TrainedWeights weights = inputs.Settings.Lora is { } lora
            ? LoraWeights.Create(inputs.BaseModel, lora, inputs.Settings.Seed, BaseModelName(inputs))
            : FullWeights.Load(inputs.BaseModelDirectory, inputs.BaseModel.Device, inputs.BaseModelDirectory);
        return Construct(inputs, weights, resumed: null, resumedFrom: null, optimizerState: null);
    }

    /// <summary>
    /// Continues a run from one of its checkpoints with the next epoch, with the checkpoint's weights
    /// and optimizer state: the result is what the uninterrupted run would have produced. The
    /// inputs must be the original run's (same settings and training data); checkpoints keep going
    /// to <see cref="FineTuningInputs.OutputDirectory"/>.
    /// </summary>
    /// <exception cref="InvalidDataException">The checkpoint cannot be read, or was written by a run with other settings or data.</exception>
    public static FineTuningRun Resume(FineTuningInputs inputs, string checkpointDirectory)
    {
        Validate(inputs);
        TrainerState state = TrainerState.Read(checkpointDirectory);
        CheckSameRun(inputs, state, checkpointDirectory);
        using var notInference = inference_mode(false);
        TrainedWeights weights = inputs.Settings.Lora is not null
            ? LoraWeights.Load(inputs.BaseModel, checkpointDirectory, BaseModelName(inputs))
            : FullWeights.Load(checkpointDirectory, inputs.BaseModel.Device, inputs.BaseModelDirectory);
        string optimizerState = Path.Combine(checkpointDirectory, TrainingOptimizer.StateFileName);
        // Without a saved optimizer state (a checkpoint from elsewhere) AdamW's moments start again from zero.
        return Construct(inputs, weights, state, checkpointDirectory, File.Exists(optimizerState) ? optimizerState : null);
    }

    public int StepsPerEpoch { get; }
    public int TotalSteps { get; }

    /// <summary>Optimizer steps taken so far.</summary>
    public int Step { get; private set; }

    public long TrainedTokens { get; private set; }

    public int CompletedEpochs => _phase is Phase.Finishing or Phase.Completed ? _settings.Epochs : _epoch;

    public bool IsCompleted => _phase == Phase.Completed;

    /// <summary>The newest checkpoint written (or resumed from), null before the first.</summary>
    public string? LatestCheckpoint { get; private set; }

    public string FinalDirectory => Path.Combine(_inputs.OutputDirectory, "final");

    internal TrainedWeights Weights => _weights;

    /// <summary>Does the next bounded piece of work; returns what it finished (often nothing).</summary>
    public IReadOnlyList<TrainingEvent> RunSlice()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var scope = NewDisposeScope();
        // The engine thread may come here from anything; training needs autograd and normal tensors.
        using var notInference = inference_mode(false);
        using var grad = enable_grad();
        return _phase switch
        {
            Phase.Training => TrainMicroBatch(),
            Phase.Stepping => TakeOptimizerStep(),
            Phase.Validating => ValidatePass(),
            Phase.Checkpointing => WriteCheckpoint(),
            Phase.Finishing => WriteFinal(),
            _ => [],
        };
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _optimizer.Dispose();
        _weights.Dispose();
    }

    private static FineTuningRun Construct(FineTuningInputs inputs, TrainedWeights weights, TrainerState? resumed, string? resumedFrom, string? optimizerState)
    {
        try
        {
            var run = new FineTuningRun(inputs, weights, resumed);
            if (optimizerState is not null)
            {
                run._optimizer.load_state_dict(optimizerState);
            }
            run.LatestCheckpoint = resumedFrom;
            return run;
        }
        catch
        {
            weights.Dispose();
            throw;
        }
    }

    private void BeginEpoch()
    {
        _batches = BatchPlanner.PlanEpoch(_examples, _settings.BatchSize, _settings.Seed, _epoch);
        _batchIndex = 0;
        BeginBatch();
    }

    private void BeginBatch()
    {
        int[] batch = _batches[_batchIndex];
        _microBatches = BatchPlanner.MicroBatches(batch, _examples, _settings.MicroBatchTokens);
        _microBatchIndex = 0;
        _batchTrainedTokens = batch.Sum(i => _examples[i].TrainedTokenCount);
        _batchLossSum = 0;
        _batchCorrect = 0;
        _phase = Phase.Training;
    }

    private IReadOnlyList<TrainingEvent> TrainMicroBatch()
    {
        using LabeledBatch batch = LabeledBatch.Create(_microBatches[_microBatchIndex].Select(i => _examples[i]).ToList(), _device);
        Tensor logits = _weights.Logits(batch.InputIds);                                // (B, T, V)
        (Tensor lossSum, long correct) = TokenLoss.Sum(logits, batch.Labels);
        // Each pass adds its share of the batch mean, so the accumulated gradient is that of the
        // mean over all trained tokens of the batch however it was cut into passes.
        using Scalar batchTokens = ((double)_batchTrainedTokens).ToScalar();
        lossSum.div(batchTokens).backward();
        _batchLossSum += lossSum.item<float>();
        _batchCorrect += correct;
        if (++_microBatchIndex == _microBatches.Count)
        {
            _phase = Phase.Stepping;
        }
        return [];
    }

    private IReadOnlyList<TrainingEvent> TakeOptimizerStep()
    {
        int step = Step + 1;
        double learningRate = _schedule.At(step);
        TrainingOptimizer.SetLearningRate(_optimizer, learningRate);
        double norm = nn.utils.clip_grad_norm_(_weights.Parameters, _settings.MaxGradNorm);
        if (!double.IsFinite(norm))
        {
            throw new InvalidOperationException(
                $"training diverged at step {step}: the gradient norm is {norm} (try a lower learning rate)");
        }
        _optimizer.step();
        _optimizer.zero_grad();
        Step = step;
        TrainedTokens += _batchTrainedTokens;

        double loss = _batchLossSum / _batchTrainedTokens;
        double accuracy = (double)_batchCorrect / _batchTrainedTokens;
        _history.Add(new TrainerState.LogEntry
        {
            Step = step, Epoch = _epoch + 1, Loss = loss, TokenAccuracy = accuracy, LearningRate = learningRate, GradNorm = norm,
        });
        var completed = new OptimizerStepCompleted(step, TotalSteps, _epoch + 1, loss, accuracy, learningRate, norm, TrainedTokens);

        if (++_batchIndex < _batches.Count)
        {
            BeginBatch();
        }
        else if (_validationExamples.Count > 0)
        {
            BeginValidation();
        }
        else
        {
            _phase = Phase.Checkpointing;
        }
        return [completed];
    }

    private void BeginValidation()
    {
        int[] byLength = Enumerable.Range(0, _validationExamples.Count).OrderByDescending(i => _validationExamples[i].Length).ToArray();
        _validationPasses = BatchPlanner.MicroBatches(byLength, _validationExamples, _settings.MicroBatchTokens);
        _validationIndex = 0;
        _validationLossSum = 0;
        _validationCorrect = 0;
        _validationTokens = 0;
        _phase = Phase.Validating;
    }

    private IReadOnlyList<TrainingEvent> ValidatePass()
    {
        using var noGrad = no_grad();
        using LabeledBatch batch = LabeledBatch.Create(_validationPasses[_validationIndex].Select(i => _validationExamples[i]).ToList(), _device);
        Tensor logits = _weights.Logits(batch.InputIds);                                // (B, T, V)
        (Tensor lossSum, long correct) = TokenLoss.Sum(logits, batch.Labels);
        _validationLossSum += lossSum.item<float>();
        _validationCorrect += correct;
        _validationTokens += batch.TrainedTokenCount;
        if (++_validationIndex == _validationPasses.Count)
        {
            _phase = Phase.Checkpointing;
        }
        return [];
    }

    private IReadOnlyList<TrainingEvent> WriteCheckpoint()
    {
        double? validationLoss = _validationTokens > 0 ? _validationLossSum / _validationTokens : null;
        double? validationAccuracy = _validationTokens > 0 ? (double)_validationCorrect / _validationTokens : null;
        _validationTokens = 0;
        if (validationLoss is not null)
        {
            _history.Add(new TrainerState.LogEntry
            {
                Step = Step, Epoch = _epoch + 1, ValidationLoss = validationLoss, ValidationTokenAccuracy = validationAccuracy,
            });
        }
        var epochCompleted = new EpochCompleted(_epoch + 1, Step, validationLoss, validationAccuracy);
        _epoch++;

        string target = CheckpointDirectories.ForStep(_inputs.OutputDirectory, Step);
        WholeDirectory.Write(target, staging =>
        {
            _weights.SaveModel(staging);
            CurrentState().Write(staging);
            _optimizer.save_state_dict(Path.Combine(staging, TrainingOptimizer.StateFileName));
        });
        LatestCheckpoint = target;

        if (_epoch < _settings.Epochs)
        {
            BeginEpoch();
        }
        else
        {
            _phase = Phase.Finishing;
        }
        return [epochCompleted, new CheckpointSaved(_epoch, Step, target)];
    }

    /// <summary>final/ is the last checkpoint without the optimizer state, which only a resume needs.</summary>
    private IReadOnlyList<TrainingEvent> WriteFinal()
    {
        string source = LatestCheckpoint!;
        WholeDirectory.Write(FinalDirectory, staging =>
        {
            foreach (string file in Directory.GetFiles(source).Where(f => Path.GetFileName(f) != TrainingOptimizer.StateFileName))
            {
                File.Copy(file, Path.Combine(staging, Path.GetFileName(file)));
            }
        });
        _phase = Phase.Completed;
        return [new TrainingCompleted(Step, FinalDirectory)];
    }

    private TrainerState CurrentState() => new()
    {
        CompletedEpochs = _epoch,
        OptimizerStep = Step,
        TotalSteps = TotalSteps,
        TrainedTokens = TrainedTokens,
        Kind = _weights.Kind,
        Seed = _settings.Seed,
        Settings = TrainerState.SettingsJson(_settings),
        TrainingDataFingerprint = Fingerprint(_inputs.Training),
        LogHistory = _history.ToList(),
    };

    private static void Validate(FineTuningInputs inputs)
    {
        inputs.Settings.Validate(inputs.BaseModel);
        if (inputs.Training.Examples.Count == 0)
        {
            throw new ArgumentException("the training set has no example with a trained token");
        }
        int maxLength = inputs.Settings.EffectiveMaxLength(inputs.BaseModel.Shape);
        IEnumerable<TrainingExample> all = inputs.Training.Examples.Concat(inputs.Validation?.Examples ?? []);
        if (all.Any(e => e.Length > maxLength))
        {
            throw new ArgumentException($"an example is longer than the {maxLength} tokens this run allows; load the datasets with that maximum length");
        }
    }

    private static void CheckSameRun(FineTuningInputs inputs, TrainerState state, string checkpointDirectory)
    {
        string where = Path.Combine(checkpointDirectory, TrainerState.FileName);
        IReadOnlyList<string> differing = state.SettingsDifferingFrom(TrainerState.SettingsJson(inputs.Settings));
        if (differing.Count > 0)
        {
            throw new InvalidDataException($"{where}: the checkpoint was written with other settings ({string.Join(", ", differing)}); resume with the original ones");
        }
        if (state.TrainingDataFingerprint != Fingerprint(inputs.Training))
        {
            throw new InvalidDataException($"{where}: the checkpoint was trained on other data ({state.TrainingDataFingerprint}, now {Fingerprint(inputs.Training)})");
        }
    }

    private static string Fingerprint(TrainingDataset dataset) =>
        $"{dataset.Examples.Count} examples, {dataset.TokenCount} tokens, {dataset.TrainedTokenCount} trained";

    private static string BaseModelName(FineTuningInputs inputs) => inputs.BaseModelName ?? inputs.BaseModelDirectory;
}
