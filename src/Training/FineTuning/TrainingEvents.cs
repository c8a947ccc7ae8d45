namespace LlmServer.Training.FineTuning;

/// <summary>Something a <see cref="FineTuningRun"/> slice finished, for the job's event log and metrics.</summary>
public abstract record TrainingEvent;

/// <summary>One optimizer step. Loss and accuracy are over the batch's trained tokens; the learning rate is the one this step used.</summary>
/// <param name="Epoch">1-based.</param>
/// <param name="GradientNorm">The global gradient norm before clipping.</param>
/// <param name="TrainedTokens">Trained tokens seen so far, this step's included.</param>
public sealed record OptimizerStepCompleted(
    int Step,
    int TotalSteps,
    int Epoch,
    double TrainLoss,
    double TrainTokenAccuracy,
    double LearningRate,
    double GradientNorm,
    long TrainedTokens) : TrainingEvent;

/// <summary>The end of an epoch; validation figures are null without a validation set.</summary>
public sealed record EpochCompleted(int Epoch, int Step, double? ValidationLoss, double? ValidationTokenAccuracy) : TrainingEvent;

/// <summary>A checkpoint complete on disk (written whole, then renamed into place).</summary>
public sealed record CheckpointSaved(int Epoch, int Step, string Directory) : TrainingEvent;

/// <summary>The run is over; <paramref name="FinalDirectory"/> holds the last checkpoint's model.</summary>
public sealed record TrainingCompleted(int Step, string FinalDirectory) : TrainingEvent;
