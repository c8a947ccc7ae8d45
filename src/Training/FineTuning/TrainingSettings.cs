using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;

namespace LlmServer.Training.FineTuning;

/// <summary>The hyperparameters of a fine-tuning run.</summary>
public sealed record TrainingSettings
{
    public int Epochs { get; init; } = 3;

    /// <summary>Examples per optimizer step.</summary>
    public int BatchSize { get; init; } = 8;

    /// <summary>The peak learning rate, reached at the end of warmup.</summary>
    public double LearningRate { get; init; } = 1e-4;

    /// <summary>Share of all optimizer steps spent warming up linearly from 0; ignored when <see cref="WarmupSteps"/> is set.</summary>
    public double WarmupFraction { get; init; } = 0.03;

    public int? WarmupSteps { get; init; }

    /// <summary>Where the cosine decay ends, as a share of <see cref="LearningRate"/>.</summary>
    public double MinLearningRateFraction { get; init; } = 0.1;

    /// <summary>Gradients are clipped to this global L2 norm before each step.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>AdamW's decoupled weight decay; a full fine-tune spares biases and layer norms, as transformers' Trainer does.</summary>
    public double WeightDecay { get; init; }

    /// <summary>Seeds the adapter's initialization and each epoch's shuffle.</summary>
    public long Seed { get; init; } = 42;

    /// <summary>Train a LoRA adapter; null trains every weight of a copy of the base.</summary>
    public LoraSettings? Lora { get; init; }

    /// <summary>Longest example in tokens; null is the model's context (n_positions, max_position_embeddings).</summary>
    public int? MaxLength { get; init; }

    /// <summary>
    /// Padded tokens per forward pass: a batch is cut into passes of at most this many (at least one
    /// example each), which bounds the memory and the time of one <see cref="FineTuningRun.RunSlice"/>.
    /// </summary>
    public int MicroBatchTokens { get; init; } = 4096;

    /// <summary>This run's learning rates over <paramref name="totalSteps"/> optimizer steps.</summary>
    public LearningRateSchedule Schedule(int totalSteps)
    {
        int warmup = WarmupSteps ?? (int)Math.Ceiling(WarmupFraction * totalSteps);
        return new LearningRateSchedule(LearningRate, MinLearningRateFraction, warmup, totalSteps);
    }

    /// <summary>The longest example this run accepts for a model of <paramref name="shape"/>.</summary>
    public int EffectiveMaxLength(ModelShape shape) => Math.Min(MaxLength ?? shape.MaxPositions, shape.MaxPositions);

    /// <exception cref="ArgumentException">A setting is out of range; the message names it.</exception>
    public void Validate(ICausalLanguageModel model)
    {
        Require(Epochs >= 1, $"epochs must be at least 1, got {Epochs}");
        Require(BatchSize >= 1, $"batch size must be at least 1, got {BatchSize}");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"learning rate must be positive, got {LearningRate}");
        Require(WarmupFraction is >= 0 and <= 1, $"warmup fraction must be within [0, 1], got {WarmupFraction}");
        Require(WarmupSteps is null or >= 0, $"warmup steps must not be negative, got {WarmupSteps}");
        Require(MinLearningRateFraction is >= 0 and <= 1, $"minimum learning rate fraction must be within [0, 1], got {MinLearningRateFraction}");
        Require(MaxGradNorm > 0, $"max grad norm must be positive, got {MaxGradNorm}");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), $"weight decay must not be negative, got {WeightDecay}");
        Require(MaxLength is null or >= 2, $"max length must be at least 2 tokens, got {MaxLength}");
        Require(MicroBatchTokens >= 1, $"micro-batch tokens must be at least 1, got {MicroBatchTokens}");
        Lora?.TargetedPaths(model.AdaptableLayers);
    }

    private static void Require(bool condition, string message)
    {
        if (!condition)
        {
            throw new ArgumentException(message);
        }
    }
}
