using System.Diagnostics;
using System.Globalization;
using LlmServer.Bench.Progress;
using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Checkpoints;
using LlmServer.Training.Data;
using LlmServer.Training.FineTuning;
using LlmServer.Training.Reports;
using static TorchSharp.torch;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver fine-tune --model DIR --training-file FILE --out DIR</c>: supervised fine-tuning
/// from the command line with <see cref="FineTuningRun"/>, the trainer the fine-tuning jobs run
/// inside the server, so a model tuned here is the one a job would have produced.
/// </summary>
public static class FineTuneCommand
{
    private static readonly string[] ValueFlags =
    [
        "--model", "--training-file", "--validation-file", "--out", "--epochs", "--batch-size", "--lr", "--warmup-fraction",
        "--min-lr-fraction", "--weight-decay", "--max-grad-norm", "--lora-rank", "--lora-alpha", "--max-length", "--seed",
        "--micro-batch-tokens", "--device", "--threads",
    ];

    public const string Help = """
        Usage: llmserver fine-tune --model DIR --training-file FILE --out DIR [options]

        Fine-tunes a model on OpenAI fine-tuning JSONL (chat "messages" or "prompt"/"completion" lines; loss on the
        assistant turns or the completion only) with the trainer that /v1/fine_tuning/jobs uses. Checkpoints go to
        DIR/checkpoints/step-N/ after every epoch, the result (and its loss-curve.svg) to DIR/final/.

          --validation-file FILE   validation loss after every epoch
          --epochs N (3)  --batch-size N (8)  --lr X (1e-4)  --warmup-fraction X (0.03)  --min-lr-fraction X (0.1)
          --weight-decay X (0)  --max-grad-norm X (1.0)  --max-length N (the model's context)  --seed N (42)
          --micro-batch-tokens N (4096)
          --lora-rank N (0: every weight; N > 0 trains a LoRA adapter of that rank)  --lora-alpha X (2 x rank)
          --device cpu|cuda|cuda:N (cpu)  --threads N (0: one per core)
          --resume                 continue from the newest DIR/checkpoints/step-N (same flags, same data)
        """;

    public static int Run(IReadOnlyList<string> args) =>
        CommandArguments.RunCommand(args, Help, ValueFlags, ["--resume"], FineTune);

    private static int FineTune(CommandArguments arguments)
    {
        string modelDirectory = Path.GetFullPath(arguments.Required("--model"));
        string output = Path.GetFullPath(arguments.Required("--out"));
        int loraRank = arguments.Int("--lora-rank", 0);
        var settings = new TrainingSettings
        {
            Epochs = arguments.Int("--epochs", 3),
            BatchSize = arguments.Int("--batch-size", 8),
            LearningRate = arguments.Double("--lr", 1e-4),
            WarmupFraction = arguments.Double("--warmup-fraction", 0.03),
            MinLearningRateFraction = arguments.Double("--min-lr-fraction", 0.1),
            WeightDecay = arguments.Double("--weight-decay", 0),
            MaxGradNorm = arguments.Double("--max-grad-norm", 1.0),
            Seed = arguments.Long("--seed", 42),
            MaxLength = arguments.Has("--max-length") ? arguments.Int("--max-length", 0) : null,
            MicroBatchTokens = arguments.Int("--micro-batch-tokens", 4096),
        };
        Device device = TrainingDevice.Select(arguments.String("--device") ?? "cpu", arguments.Int("--threads", 0));
        string? checkpoint = arguments.ResumeCheckpoint(output);

        using ICausalLanguageModel baseModel = ModelArchitectures.Load(modelDirectory, ScalarType.Float32, device);
        // Every projection of each block, the default of a fine-tuning job that names no target modules.
        settings = settings with
        {
            Lora = loraRank > 0 ? new LoraSettings(loraRank, arguments.Double("--lora-alpha", 2.0 * loraRank), baseModel.AdaptableLayers.DefaultTargetModules) : null,
        };
        // The model's own tokenizer and chat template, as serving uses them (see EngineLoader).
        ITokenizer tokenizer = ModelTokenizer.Load(modelDirectory);
        ChatPromptFormatter formatter = ChatPromptFormatter.Load(modelDirectory, tokenizer);
        int maxLength = settings.EffectiveMaxLength(baseModel.Shape);
        TrainingDataset training = TrainingDataset.Load(CommandArguments.ExistingFile(arguments.Required("--training-file"), "--training-file"), tokenizer, formatter, maxLength);
        TrainingDataset? validation = arguments.String("--validation-file") is { } validationPath
            ? TrainingDataset.Load(CommandArguments.ExistingFile(validationPath, "--validation-file"), tokenizer, formatter, maxLength)
            : null;
        Console.Error.WriteLine($"data: {training.Examples.Count:N0} training examples ({training.TrainedTokenCount:N0} trained of {training.TokenCount:N0} tokens)"
            + (validation is null ? "" : $", {validation.Examples.Count:N0} validation examples")
            + (training.TruncatedCount > 0 ? $"; {training.TruncatedCount} truncated to {maxLength} tokens" : ""));

        var inputs = new FineTuningInputs(baseModel, modelDirectory, training, validation, settings, output);
        using FineTuningRun run = checkpoint is null ? FineTuningRun.Start(inputs) : FineTuningRun.Resume(inputs, checkpoint);
        Console.Error.WriteLine($"{(settings.Lora is null ? "full fine-tune" : $"LoRA rank {settings.Lora.Rank}")} of {modelDirectory}: "
            + $"{run.TotalSteps} steps ({run.StepsPerEpoch} per epoch){(checkpoint is null ? "" : $", resuming at step {run.Step} from {checkpoint}")}");

        var clock = Stopwatch.StartNew();
        var progress = new ConsoleProgressBar();
        long tokensAtStart = run.TrainedTokens;
        string? finalDirectory = null;
        while (!run.IsCompleted)
        {
            foreach (TrainingEvent happened in run.RunSlice())
            {
                switch (happened)
                {
                    case OptimizerStepCompleted step:
                        double tokensPerSecond = (step.TrainedTokens - tokensAtStart) / Math.Max(clock.Elapsed.TotalSeconds, 1e-9);
                        progress.Report(step.Step, step.TotalSteps, string.Create(CultureInfo.InvariantCulture,
                            $"epoch {step.Epoch}  loss {step.TrainLoss:F3}  token accuracy {step.TrainTokenAccuracy:P1}  {tokensPerSecond:N0} trained tok/s"));
                        break;
                    case EpochCompleted epoch when epoch.ValidationLoss is { } loss:
                        progress.Complete();
                        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"epoch {epoch.Epoch}: validation loss {loss:F4}, token accuracy {epoch.ValidationTokenAccuracy:P1}"));
                        break;
                    case TrainingCompleted completed:
                        finalDirectory = completed.FinalDirectory;
                        break;
                }
            }
        }
        progress.Complete();
        string final = finalDirectory ?? run.FinalDirectory;
        IReadOnlyList<TrainerState.LogEntry> history = TrainerState.Read(final).LogHistory;
        File.WriteAllText(Path.Combine(final, LossCurveChart.FileName), LossCurveChart.Svg(history, $"Fine-tuning {Path.GetFileName(modelDirectory)}: {run.TotalSteps} steps"));
        Console.WriteLine($"fine-tuned {run.TotalSteps} steps in {clock.Elapsed.TotalMinutes:F1} min: {final}");
        return 0;
    }
}
