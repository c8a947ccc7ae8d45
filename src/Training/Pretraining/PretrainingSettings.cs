namespace LlmServer.Training.Pretraining;

/// <summary>The hyperparameters of pretraining a model from scratch (nanoGPT's, by name).</summary>
public sealed record PretrainingSettings
{
    /// <summary>Optimizer steps in the whole run; the schedule decays over exactly these.</summary>
    public int Steps { get; init; } = 2_000;

    /// <summary>Token windows of <see cref="ContextLength"/> per optimizer step.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Tokens per training window; at most the model's n_positions.</summary>
    public int ContextLength { get; init; } = 128;

    public double LearningRate { get; init; } = 1e-3;

    public int WarmupSteps { get; init; } = 100;

    /// <summary>Where the cosine decay ends, as a share of <see cref="LearningRate"/>.</summary>
    public double MinLearningRateFraction { get; init; } = 0.1;

    /// <summary>AdamW's decoupled weight decay, on matrices only (not biases or layer norms).</summary>
    public double WeightDecay { get; init; } = 0.1;

    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Seeds the initial weights and every batch (batch n is drawn from the seed and n alone, so a resume draws what the run would have).</summary>
    public long Seed { get; init; } = 1337;

    /// <summary>Optimizer steps between two held-out evaluations (and one at the end).</summary>
    public int EvalInterval { get; init; } = 250;

    /// <summary>Held-out tokens each evaluation scores (at most the held-out set).</summary>
    public int EvalTokens { get; init; } = 32_768;

    /// <summary>Optimizer steps between two checkpoints (and one at the end).</summary>
    public int CheckpointInterval { get; init; } = 500;

    /// <summary>Tokens per forward pass; a batch larger than this is cut into passes whose gradients add up.</summary>
    public int MicroBatchTokens { get; init; } = 8_192;

    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate(int maxPositions)
    {
        Require(Steps >= 1, $"steps must be at least 1, got {Steps}");
        Require(BatchSize >= 1, $"batch size must be at least 1, got {BatchSize}");
        Require(ContextLength >= 2 && ContextLength <= maxPositions, $"context length must be within [2, {maxPositions}] (the model's n_positions), got {ContextLength}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate must be positive, got {LearningRate}");
        Require(WarmupSteps >= 0, $"warmup steps must not be negative, got {WarmupSteps}");
        Require(MinLearningRateFraction is >= 0 and <= 1, $"minimum learning rate fraction must be within [0, 1], got {MinLearningRateFraction}");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"weight decay must not be negative, got {WeightDecay}");
        Require(MaxGradNorm > 0, $"max grad norm must be positive, got {MaxGradNorm}");
        Require(EvalInterval >= 1, $"eval interval must be at least 1, got {EvalInterval}");
        Require(EvalTokens >= ContextLength, $"eval tokens must be at least the context length, got {EvalTokens}");
        Require(CheckpointInterval >= 1, $"checkpoint interval must be at least 1, got {CheckpointInterval}");
        Require(MicroBatchTokens >= ContextLength, $"micro-batch tokens must be at least the context length, got {MicroBatchTokens}");
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException(message);
        }
    }
}
