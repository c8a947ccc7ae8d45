using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using LlmServer.Bench.Progress;
using LlmServer.Host;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Models;
using LlmServer.Inference.Runtime;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Pretraining;
using LlmServer.Training.Reports;
using LlmServer.Training.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver train --data FILE --out DIR ...</c>: pretrains a GPT-2-architecture model from
/// scratch on a text or JSONL corpus and saves it as a Hugging Face directory that <c>serve</c>
/// loads: the "build an LLM yourself" path.
/// </summary>
public static class TrainCommand
{
    private static readonly string[] ValueFlags =
    [
        "--data", "--validation-data", "--held-out-every", "--out", "--tokenizer", "--vocab-size", "--chat-template",
        "--layers", "--width", "--heads", "--context", "--steps", "--batch-size", "--lr", "--warmup-steps", "--min-lr-fraction",
        "--weight-decay", "--max-grad-norm", "--eval-interval", "--eval-tokens", "--checkpoint-interval", "--micro-batch-tokens",
        "--seed", "--device", "--threads",
    ];

    private static readonly string[] SwitchFlags = ["--resume"];

    public const string Help = """
        Usage: llmserver train --data FILE --out DIR (--tokenizer DIR | --vocab-size N) [options]

        Pretrains a GPT-2-architecture model from random weights. Checkpoints go to DIR/checkpoints/step-N/,
        the finished model (a Hugging Face directory `serve --model` loads) and its loss-curve.svg to DIR/final/.

        Data
          --data FILE              corpus: a text file, or .jsonl with {"text": ...} or chat {"messages": [...]} lines
                                   (chat lines are rendered with the chat template, as serving renders them)
          --validation-data FILE   held-out corpus for loss and perplexity (default: every Nth document of --data)
          --held-out-every N       without --validation-data, hold out one document in N (default 100)
        Tokenizer (one of)
          --tokenizer DIR          use DIR's vocab.json + merges.txt (and its tokenizer_config.json)
          --vocab-size N           train a byte-level BPE of N tokens on the training documents (GPT-2 file format)
          --chat-template FILE     Jinja chat template to ship in tokenizer_config.json (default: the tokenizer's, or ChatML)
        Model
          --layers N (6)  --width N (256)  --heads N (8)  --context N (256: n_positions and the training window)
        Optimization
          --steps N (2000)  --batch-size N (16 windows)  --lr X (1e-3)  --warmup-steps N (100)  --min-lr-fraction X (0.1)
          --weight-decay X (0.1)  --max-grad-norm X (1.0)  --micro-batch-tokens N (8192)
        Run
          --eval-interval N (250)  --eval-tokens N (32768)  --checkpoint-interval N (500)  --seed N (1337)
          --device cpu|cuda|cuda:N (cpu)  --threads N (0: one per core)
          --resume                 continue from the newest DIR/checkpoints/step-N (same flags, same data)
        """;

    public static int Run(IReadOnlyList<string> args) =>
        CommandArguments.RunCommand(args, Help, ValueFlags, SwitchFlags, Train);

    private static int Train(CommandArguments arguments)
    {
        string dataPath = CommandArguments.ExistingFile(arguments.Required("--data"), "--data");
        string output = Path.GetFullPath(arguments.Required("--out"));
        if (arguments.Has("--tokenizer") == arguments.Has("--vocab-size"))
        {
            throw new CommandLineException("give exactly one of --tokenizer DIR and --vocab-size N");
        }
        var settings = new PretrainingSettings
        {
            Steps = arguments.Int("--steps", 2_000),
            BatchSize = arguments.Int("--batch-size", 16),
            ContextLength = arguments.Int("--context", 256),
            LearningRate = arguments.Double("--lr", 1e-3),
            WarmupSteps = arguments.Int("--warmup-steps", 100),
            MinLearningRateFraction = arguments.Double("--min-lr-fraction", 0.1),
            WeightDecay = arguments.Double("--weight-decay", 0.1),
            MaxGradNorm = arguments.Double("--max-grad-norm", 1.0),
            EvalInterval = arguments.Int("--eval-interval", 250),
            EvalTokens = arguments.Int("--eval-tokens", 32_768),
            CheckpointInterval = arguments.Int("--checkpoint-interval", 500),
            MicroBatchTokens = arguments.Int("--micro-batch-tokens", 8_192),
            Seed = arguments.Long("--seed", 1337),
        };
        // The shape is checked before any data is read: a bad flag should not cost a tokenizer run.
        var shape = new Gpt2Config
        {
            LayerCount = arguments.Int("--layers", 6),
            EmbeddingSize = arguments.Int("--width", 256),
            HeadCount = arguments.Int("--heads", 8),
            MaxPositions = settings.ContextLength,
        };
        shape.Validate("the model flags");
        Device device = TrainingDevice.Select(arguments.String("--device") ?? "cpu", arguments.Int("--threads", 0));
        bool resume = arguments.Has("--resume");
        string? checkpoint = arguments.ResumeCheckpoint(output);

        var clock = Stopwatch.StartNew();
        string? chatTemplate = arguments.String("--chat-template") is { } templatePath
            ? File.ReadAllText(CommandArguments.ExistingFile(templatePath, "--chat-template"))
            : null;
        string? givenTokenizer = arguments.String("--tokenizer");
        if (givenTokenizer is not null && !File.Exists(Path.Combine(givenTokenizer, "vocab.json")) && HuggingFaceTokenizer.Exists(givenTokenizer))
        {
            // Pretraining stays GPT-2's: its model, its byte-level BPE files and the BPE trainer that writes them.
            throw new CommandLineException(
                $"--tokenizer: {givenTokenizer} has a tokenizer.json (Llama, Qwen, ...) but no vocab.json + merges.txt; train pretrains " +
                "GPT-2 models with a GPT-2 tokenizer only: give one, or --vocab-size N (to tune a Llama-family model, use fine-tune --model DIR)");
        }
        Gpt2Tokenizer? loadedTokenizer = givenTokenizer is null ? null : Gpt2Tokenizer.Load(givenTokenizer);
        string endOfText = loadedTokenizer?.EndOfTextToken ?? Gpt2Tokenizer.DefaultEndOfTextToken;
        // Chat lines are rendered before any tokenizer exists: a trained one learns from the rendered text.
        ChatPromptFormatter formatter = chatTemplate is not null || givenTokenizer is null
            ? ChatPromptFormatter.FromTemplate(chatTemplate, endOfText)
            : ChatPromptFormatter.Load(givenTokenizer, endOfText);
        (List<PretrainingDocument> trainingDocuments, List<PretrainingDocument> heldOutDocuments) = ReadDocuments(arguments, dataPath, formatter, settings.Seed);
        string tokenizerDirectory = givenTokenizer is null
            ? TrainTokenizer(trainingDocuments, arguments.Int("--vocab-size", 0), chatTemplate, output, resume)
            : CopyTokenizer(givenTokenizer, chatTemplate, output);
        // A copy made only to ship a chat template has the same vocabulary and merges.
        Gpt2Tokenizer tokenizer = loadedTokenizer ?? Gpt2Tokenizer.Load(tokenizerDirectory);
        PretrainingCorpus training = PretrainingCorpus.Tokenize(trainingDocuments, tokenizer, formatter);
        PretrainingCorpus heldOut = PretrainingCorpus.Tokenize(heldOutDocuments, tokenizer, formatter);
        Console.Error.WriteLine($"corpus: {training.DocumentCount:N0} documents, {training.Tokens.Length:N0} tokens for training; "
            + $"{heldOut.DocumentCount:N0} documents, {heldOut.Tokens.Length:N0} tokens held out ({clock.Elapsed.TotalSeconds:F1} s with the tokenizer)");

        Gpt2Config config = shape with { VocabSize = tokenizer.VocabSize, EosTokenId = tokenizer.EndOfTextId, BosTokenId = tokenizer.EndOfTextId };
        using PretrainingRun run = checkpoint is null
            ? PretrainingRun.Start(config, settings, training, heldOut, tokenizerDirectory, output, device)
            : PretrainingRun.Resume(checkpoint, settings, training, heldOut, tokenizerDirectory, output, device);
        Console.Error.WriteLine(checkpoint is null
            ? $"model: {config.LayerCount} layers, {config.EmbeddingSize} wide, {config.HeadCount} heads, context {config.MaxPositions}, vocabulary {config.VocabSize}: {config.ParameterCount():N0} parameters on {device}"
            : $"resuming from {checkpoint} at step {run.Step} of {run.TotalSteps}");
        return TrainLoop(run, settings);
    }

    private static int TrainLoop(PretrainingRun run, PretrainingSettings settings)
    {
        using var interrupted = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            // The first Ctrl+C finishes the step and writes a checkpoint; --resume continues from it.
            e.Cancel = true;
            interrupted.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var progress = new ConsoleProgressBar();
            double? heldOutLoss = null;
            var window = new Queue<(long Tokens, TimeSpan Elapsed)>();
            while (!run.IsCompleted && !interrupted.IsCancellationRequested)
            {
                PretrainingStep step = run.TrainStep();
                window.Enqueue((step.TrainedTokens, step.Elapsed));
                if (window.Count > 20)
                {
                    window.Dequeue();
                }
                bool last = run.IsCompleted;
                if (step.Step % settings.EvalInterval == 0 || last)
                {
                    heldOutLoss = run.EvaluateHeldOut();
                }
                progress.Report(step.Step, step.TotalSteps, Describe(step, heldOutLoss, window));
                if (step.Step % settings.CheckpointInterval == 0 && !last)
                {
                    run.SaveCheckpoint();
                }
            }
            progress.Complete();
            string checkpoint = run.SaveCheckpoint();
            if (!run.IsCompleted)
            {
                Console.Error.WriteLine($"interrupted: checkpoint {checkpoint}; continue with the same command and --resume");
                return 130;
            }
            string final = run.SaveFinal(directory => File.WriteAllText(Path.Combine(directory, LossCurveChart.FileName),
                LossCurveChart.Svg(run.History, $"Pretraining: {run.Config.ParameterCount():N0} parameters, {run.TotalSteps} steps")));
            // A resume of a finished run takes no step, so nothing measured the held-out loss yet.
            double loss = heldOutLoss ?? run.EvaluateHeldOut();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"trained {run.TotalSteps} steps ({run.TrainedTokens:N0} tokens) in {Format(run.Elapsed)}: held-out loss {loss:F4}, perplexity {Math.Exp(loss):F2}"));
            Console.WriteLine($"model: {final}  (serve it: llmserver serve --model {final}; loss curve: {Path.Combine(final, LossCurveChart.FileName)})");
            return 0;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private static string Describe(PretrainingStep step, double? heldOutLoss, Queue<(long Tokens, TimeSpan Elapsed)> window)
    {
        (long firstTokens, TimeSpan firstElapsed) = window.Peek();
        double seconds = (step.Elapsed - firstElapsed).TotalSeconds;
        double tokensPerSecond = seconds > 0 ? (step.TrainedTokens - firstTokens) / seconds : 0;
        double stepsPerSecond = seconds > 0 ? (window.Count - 1) / seconds : 0;
        string eta = stepsPerSecond > 0 ? Format(TimeSpan.FromSeconds((step.TotalSteps - step.Step) / stepsPerSecond)) : "?";
        string heldOut = heldOutLoss is { } h ? string.Create(CultureInfo.InvariantCulture, $"  held-out {h:F3} (ppl {Math.Exp(h):F1})") : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"loss {step.Loss:F3}{heldOut}  lr {step.LearningRate:0.##e+0}  {tokensPerSecond:N0} tok/s  ETA {eta}");
    }

    private static string Format(TimeSpan time) => time.TotalHours >= 1 ? $"{(int)time.TotalHours}h{time.Minutes:00}m" : $"{time.Minutes}m{time.Seconds:00}s";

    /// <summary>
    /// --tokenizer's directory as it is, or, with --chat-template, a copy in DIR/tokenizer that ships
    /// the template (the given directory is never changed).
    /// </summary>
    private static string CopyTokenizer(string given, string? chatTemplate, string output)
    {
        if (chatTemplate is null)
        {
            return given;
        }
        string copy = Path.Combine(output, "tokenizer");
        Directory.CreateDirectory(copy);
        foreach (string file in new[] { "vocab.json", "merges.txt", "special_tokens_map.json" })
        {
            if (File.Exists(Path.Combine(given, file)))
            {
                File.Copy(Path.Combine(given, file), Path.Combine(copy, file), overwrite: true);
            }
        }
        WriteTokenizerConfig(copy, chatTemplate);
        return copy;
    }

    /// <summary>A byte-level BPE trained on the training documents, in DIR/tokenizer (kept as it is on --resume).</summary>
    private static string TrainTokenizer(IReadOnlyList<PretrainingDocument> documents, int vocabularySize, string? chatTemplate, string output, bool resume)
    {
        string trained = Path.Combine(output, "tokenizer");
        if (resume && File.Exists(Path.Combine(trained, "vocab.json")))
        {
            return trained;
        }
        var clock = Stopwatch.StartNew();
        ByteLevelBpeVocabulary vocabulary = ByteLevelBpeTrainer.Train(documents.Select(d => d.Text), new ByteLevelBpeOptions { VocabularySize = vocabularySize });
        Directory.CreateDirectory(trained);
        vocabulary.Save(trained);
        WriteTokenizerConfig(trained, chatTemplate);
        Console.Error.WriteLine($"tokenizer: byte-level BPE of {vocabularySize:N0} tokens trained in {clock.Elapsed.TotalSeconds:F1} s, saved to {trained}");
        return trained;
    }

    private static void WriteTokenizerConfig(string directory, string? chatTemplate)
    {
        var config = new JsonObject
        {
            ["tokenizer_class"] = "GPT2Tokenizer",
            ["model_max_length"] = 1024,
            ["bos_token"] = Gpt2Tokenizer.DefaultEndOfTextToken,
            ["eos_token"] = Gpt2Tokenizer.DefaultEndOfTextToken,
            ["unk_token"] = Gpt2Tokenizer.DefaultEndOfTextToken,
        };
        if (chatTemplate is not null)
        {
            config["chat_template"] = chatTemplate;
        }
        File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"), config.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    private static (List<PretrainingDocument> Training, List<PretrainingDocument> HeldOut) ReadDocuments(
        CommandArguments arguments, string dataPath, ChatPromptFormatter formatter, long seed)
    {
        List<PretrainingDocument> documents = PretrainingCorpus.ReadDocuments(dataPath, formatter).ToList();
        if (arguments.String("--validation-data") is { } validationPath)
        {
            return (documents, PretrainingCorpus.ReadDocuments(CommandArguments.ExistingFile(validationPath, "--validation-data"), formatter).ToList());
        }
        int every = arguments.Int("--held-out-every", 100);
        if (every < 2)
        {
            throw new CommandLineException($"--held-out-every must be at least 2, got {every}");
        }
        if (documents.Count < every)
        {
            throw new CommandLineException($"{dataPath} has {documents.Count} document(s), too few to hold one in {every} out: give --validation-data");
        }
        return PretrainingCorpus.Split(documents, every, seed);
    }
}
