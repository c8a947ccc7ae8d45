using System.Diagnostics;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Training.Checkpoints;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace LlmServer.Training.Pretraining;

/// <summary>What one optimizer step of pretraining did.</summary>
public sealed record PretrainingStep(int Step, int TotalSteps, double Loss, double LearningRate, double GradNorm, long TrainedTokens, TimeSpan Elapsed);

/// <summary>
/// Trains a GPT-2 from random weights on a token stream, nanoGPT's way: every step draws
/// <see cref="PretrainingSettings.BatchSize"/> windows at random offsets, predicts each next token,
/// and takes one AdamW step on the mean cross-entropy, with linear warmup, cosine decay and
/// gradient clipping. Checkpoints go to {output}/checkpoints/step-N/ (a servable model plus the
/// optimizer state), and the finished model to {output}/final/. Create, run and dispose it on one thread.
/// </summary>
public sealed class PretrainingRun : IDisposable
{
    public const string Kind = "pretraining";

    private readonly Gpt2Model _model;
    private readonly IReadOnlyList<Parameter> _parameters;
    private readonly AdamW _optimizer;
    private readonly LearningRateSchedule _schedule;
    private readonly PretrainingSettings _settings;
    private readonly PretrainingCorpus _training;
    private readonly PretrainingCorpus _heldOut;
    private readonly string _tokenizerDirectory;
    private readonly string _outputDirectory;
    private readonly List<TrainerState.LogEntry> _history;
    private readonly Stopwatch _clock = new();
    private readonly TimeSpan _elapsedBefore;

    private PretrainingRun(Gpt2Model model, PretrainingSettings settings, PretrainingCorpus training, PretrainingCorpus heldOut,
        string tokenizerDirectory, string outputDirectory, TrainerState? resumed)
    {
        _model = model;
        _settings = settings;
        _training = training;
        _heldOut = heldOut;
        _tokenizerDirectory = tokenizerDirectory;
        _outputDirectory = outputDirectory;
        _parameters = model.parameters().ToList();
        foreach (Parameter parameter in _parameters)
        {
            parameter.requires_grad = true;
        }
        _optimizer = TrainingOptimizer.Create(_parameters, settings.LearningRate, settings.WeightDecay);
        _schedule = new LearningRateSchedule(settings.LearningRate, settings.MinLearningRateFraction, settings.WarmupSteps, settings.Steps);
        _history = resumed?.LogHistory.ToList() ?? [];
        Step = resumed?.OptimizerStep ?? 0;
        TrainedTokens = resumed?.TrainedTokens ?? 0;
        _elapsedBefore = TimeSpan.FromSeconds(resumed?.LogHistory.LastOrDefault()?.ElapsedSeconds ?? 0);
    }

    public Gpt2Config Config => _model.Config;
    public int Step { get; private set; }
    public int TotalSteps => _settings.Steps;
    public long TrainedTokens { get; private set; }
    public bool IsCompleted => Step >= _settings.Steps;
    public IReadOnlyList<TrainerState.LogEntry> History => _history;
    public string FinalDirectory => Path.Combine(_outputDirectory, "final");

    /// <summary>Training time, resumed runs included.</summary>
    public TimeSpan Elapsed => _elapsedBefore + _clock.Elapsed;

    /// <summary>A new model of <paramref name="config"/>'s shape, with GPT-2's initialisation from the seed.</summary>
    /// <exception cref="ArgumentException">The settings or the corpus cannot make a run; the message says why.</exception>
    public static PretrainingRun Start(Gpt2Config config, PretrainingSettings settings, PretrainingCorpus training, PretrainingCorpus heldOut,
        string tokenizerDirectory, string outputDirectory, Device device)
    {
        Validate(config, settings, training, heldOut);
        var model = new Gpt2Model(config, ScalarType.Float32, device);
        try
        {
            RandomCheckpoint.Initialize(model, settings.Seed);
            return new PretrainingRun(model, settings, training, heldOut, tokenizerDirectory, outputDirectory, resumed: null);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>Continues from a checkpoint of this run (same settings, same corpus): the steps that follow are the ones the uninterrupted run takes.</summary>
    /// <exception cref="InvalidDataException">The checkpoint is unreadable or from another run; the message says why.</exception>
    public static PretrainingRun Resume(string checkpointDirectory, PretrainingSettings settings, PretrainingCorpus training, PretrainingCorpus heldOut,
        string tokenizerDirectory, string outputDirectory, Device device)
    {
        TrainerState state = TrainerState.Read(checkpointDirectory);
        string where = Path.Combine(checkpointDirectory, TrainerState.FileName);
        IReadOnlyList<string> differing = state.SettingsDifferingFrom(TrainerState.SettingsJson(settings));
        if (state.Kind != Kind || differing.Count > 0)
        {
            throw new InvalidDataException(state.Kind != Kind
                ? $"{where}: written by a {state.Kind} run, not by pretraining"
                : $"{where}: the checkpoint was written with other settings ({string.Join(", ", differing)}); resume with the original ones");
        }
        if (state.TrainingDataFingerprint != Fingerprint(training))
        {
            throw new InvalidDataException($"{where}: the checkpoint was trained on other data ({state.TrainingDataFingerprint}, now {Fingerprint(training)})");
        }
        Gpt2Model model = CheckpointLoader.Load(checkpointDirectory, ScalarType.Float32, device);
        try
        {
            Validate(model.Config, settings, training, heldOut);
            var run = new PretrainingRun(model, settings, training, heldOut, tokenizerDirectory, outputDirectory, state);
            string optimizerState = Path.Combine(checkpointDirectory, TrainingOptimizer.StateFileName);
            if (!File.Exists(optimizerState))
            {
                throw new InvalidDataException($"{optimizerState}: missing: a pretraining checkpoint keeps its optimizer state");
            }
            run._optimizer.load_state_dict(optimizerState);
            return run;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>One optimizer step over one batch of windows.</summary>
    public PretrainingStep TrainStep()
    {
        if (IsCompleted)
        {
            throw new InvalidOperationException("the run has taken all its steps");
        }
        _clock.Start();
        using var scope = NewDisposeScope();
        using var grad = enable_grad();
        int step = Step + 1;
        int contextLength = _settings.ContextLength;
        int rowsPerPass = Math.Max(1, _settings.MicroBatchTokens / contextLength);
        long[] offsets = BatchOffsets(step);
        double lossSum = 0;
        for (int first = 0; first < offsets.Length; first += rowsPerPass)
        {
            long[] passOffsets = offsets[first..Math.Min(offsets.Length, first + rowsPerPass)];
            (Tensor inputs, Tensor targets) = Windows(_training.Tokens, passOffsets);           // (b, T), (b, T)
            using Tensor logits = _model.ForwardTraining(inputs);                               // (b, T, V)
            using Tensor loss = CrossEntropySum(logits, targets);
            // Each pass adds its share of the batch mean, so the gradient is the batch's however it was cut.
            // A named Scalar stays alive through the native call; an implicitly converted one may be finalized during it.
            using Scalar batchTokenCount = ((double)offsets.Length * contextLength).ToScalar();
            using Tensor share = loss.div(batchTokenCount);
            share.backward();
            lossSum += loss.item<float>();
        }
        double learningRate = _schedule.At(step);
        TrainingOptimizer.SetLearningRate(_optimizer, learningRate);
        double norm = nn.utils.clip_grad_norm_(_parameters, _settings.MaxGradNorm);
        if (!double.IsFinite(norm))
        {
            throw new InvalidOperationException($"training diverged at step {step}: the gradient norm is {norm} (try a lower learning rate)");
        }
        _optimizer.step();
        _optimizer.zero_grad();
        Step = step;
        long batchTokens = (long)offsets.Length * contextLength;
        TrainedTokens += batchTokens;
        double meanLoss = lossSum / batchTokens;
        _clock.Stop();
        _history.Add(new TrainerState.LogEntry
        {
            Step = step, Loss = meanLoss, LearningRate = learningRate, GradNorm = norm, ElapsedSeconds = Elapsed.TotalSeconds,
        });
        return new PretrainingStep(step, TotalSteps, meanLoss, learningRate, norm, TrainedTokens, Elapsed);
    }

    /// <summary>Mean cross-entropy over the first <see cref="PretrainingSettings.EvalTokens"/> held-out tokens (whole windows); perplexity is its exponential.</summary>
    public double EvaluateHeldOut()
    {
        _clock.Start();
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        int contextLength = _settings.ContextLength;
        long windows = Math.Min(_settings.EvalTokens, _heldOut.Tokens.Length - 1) / contextLength;
        int rowsPerPass = Math.Max(1, _settings.MicroBatchTokens / contextLength);
        double lossSum = 0;
        for (long first = 0; first < windows; first += rowsPerPass)
        {
            long[] offsets = Enumerable.Range(0, (int)Math.Min(rowsPerPass, windows - first)).Select(i => (first + i) * contextLength).ToArray();
            (Tensor inputs, Tensor targets) = Windows(_heldOut.Tokens, offsets);                 // (b, T), (b, T)
            using Tensor logits = _model.ForwardTraining(inputs);                               // (b, T, V)
            using Tensor loss = CrossEntropySum(logits, targets);
            lossSum += loss.item<float>();
        }
        double mean = lossSum / (windows * contextLength);
        _clock.Stop();
        _history.Add(new TrainerState.LogEntry { Step = Step, ValidationLoss = mean, ElapsedSeconds = Elapsed.TotalSeconds });
        return mean;
    }

    /// <summary>Writes checkpoints/step-N/: the model (servable as it is), the optimizer state and trainer_state.json.</summary>
    public string SaveCheckpoint()
    {
        string target = CheckpointDirectories.ForStep(_outputDirectory, Step);
        WholeDirectory.Write(target, staging =>
        {
            CheckpointWriter.WriteInto(staging, _model, _tokenizerDirectory);
            CurrentState().Write(staging);
            _optimizer.save_state_dict(Path.Combine(staging, TrainingOptimizer.StateFileName));
        });
        return target;
    }

    /// <summary>Writes final/: the model, its trainer_state.json (the whole history) and whatever <paramref name="addFiles"/> adds (the loss curve).</summary>
    public string SaveFinal(Action<string>? addFiles = null)
    {
        WholeDirectory.Write(FinalDirectory, staging =>
        {
            CheckpointWriter.WriteInto(staging, _model, _tokenizerDirectory);
            CurrentState().Write(staging);
            addFiles?.Invoke(staging);
        });
        return FinalDirectory;
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _model.Dispose();
    }

    /// <summary>Window starts for batch <paramref name="step"/>, drawn from the seed and the step alone.</summary>
    private long[] BatchOffsets(int step)
    {
        var random = new Random((int)((_settings.Seed * 1_000_003 + step) & int.MaxValue));
        long last = _training.Tokens.Length - _settings.ContextLength - 1;
        return Enumerable.Range(0, _settings.BatchSize).Select(_ => random.NextInt64(last + 1)).ToArray();
    }

    /// <summary>Windows of the stream at <paramref name="offsets"/> and the same windows one token on: inputs and next-token targets.</summary>
    private (Tensor Inputs, Tensor Targets) Windows(int[] stream, long[] offsets)
    {
        int t = _settings.ContextLength;
        long[] inputs = new long[offsets.Length * t];
        long[] targets = new long[offsets.Length * t];
        for (int row = 0; row < offsets.Length; row++)
        {
            for (int i = 0; i < t; i++)
            {
                inputs[row * t + i] = stream[offsets[row] + i];
                targets[row * t + i] = stream[offsets[row] + i + 1];
            }
        }
        Device device = _model.Device;
        return (tensor(inputs, [offsets.Length, t]).to(device), tensor(targets, [offsets.Length, t]).to(device)); // (b, T), (b, T)
    }

    private static Tensor CrossEntropySum(Tensor logits, Tensor targets)
    {
        long vocabulary = logits.shape[^1];
        using Tensor flatLogits = logits.view(-1, vocabulary);                               // (b*T, V)
        using Tensor flatTargets = targets.view(-1);                                         // (b*T)
        return nn.functional.cross_entropy(flatLogits, flatTargets, reduction: nn.Reduction.Sum);
    }

    private TrainerState CurrentState() => new()
    {
        CompletedEpochs = 0,
        OptimizerStep = Step,
        TotalSteps = TotalSteps,
        TrainedTokens = TrainedTokens,
        Kind = Kind,
        Seed = _settings.Seed,
        Settings = TrainerState.SettingsJson(_settings),
        TrainingDataFingerprint = Fingerprint(_training),
        LogHistory = _history.ToList(),
    };

    private static string Fingerprint(PretrainingCorpus corpus) => $"{corpus.DocumentCount} documents, {corpus.Tokens.Length} tokens";

    private static void Validate(Gpt2Config config, PretrainingSettings settings, PretrainingCorpus training, PretrainingCorpus heldOut)
    {
        settings.Validate(config.MaxPositions);
        if (training.Tokens.Length <= settings.ContextLength + 1)
        {
            throw new ArgumentException($"the training corpus has {training.Tokens.Length} tokens, fewer than one window of {settings.ContextLength} + 1");
        }
        if (heldOut.Tokens.Length <= settings.ContextLength + 1)
        {
            throw new ArgumentException($"the held-out corpus has {heldOut.Tokens.Length} tokens, fewer than one window of {settings.ContextLength} + 1");
        }
        if (training.Tokens.Concat(heldOut.Tokens).Any(id => id < 0 || id >= config.VocabSize))
        {
            throw new ArgumentException($"the corpus has token ids outside the model's vocabulary of {config.VocabSize}");
        }
    }
}
