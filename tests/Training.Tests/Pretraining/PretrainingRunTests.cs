using LlmServer.Inference.Models;
using LlmServer.Inference.Models.Gpt2;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Checkpoints;
using LlmServer.Training.Pretraining;
using LlmServer.Training.Tokenization;
using static TorchSharp.torch;

namespace LlmServer.Training.Tests.Pretraining;

/// <summary>
/// Pretraining a tiny GPT-2 from scratch on a small, learnable corpus, with a tokenizer trained on
/// it: the loss falls, a seed fixes the whole run, a resume continues it exactly, and what it
/// writes is a model directory the server's loader reads.
/// </summary>
public sealed class PretrainingRunTests : IDisposable
{
    private static readonly Gpt2Config TinyShape = new() { LayerCount = 2, EmbeddingSize = 32, HeadCount = 2, MaxPositions = 32 };

    private static readonly PretrainingSettings Settings = new()
    {
        Steps = 40, BatchSize = 8, ContextLength = 32, LearningRate = 1e-2, WarmupSteps = 4,
        EvalInterval = 10, EvalTokens = 2_048, CheckpointInterval = 10, Seed = 5,
    };

    private readonly string _directory = Directory.CreateTempSubdirectory("pretrain-").FullName;
    private readonly string _tokenizerDirectory;
    private readonly PretrainingCorpus _training;
    private readonly PretrainingCorpus _heldOut;

    public PretrainingRunTests()
    {
        // Counting sentences: the next token is mostly predictable, so a tiny model learns it fast.
        string[] words = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
        var documents = Enumerable.Range(0, 300)
            .Select(i => string.Join(" ", Enumerable.Range(0, 6).Select(k => words[(i + k) % words.Length])) + ".")
            .ToList();
        _tokenizerDirectory = Path.Combine(_directory, "tokenizer");
        Directory.CreateDirectory(_tokenizerDirectory);
        ByteLevelBpeTrainer.Train(documents, new ByteLevelBpeOptions { VocabularySize = 300 }).Save(_tokenizerDirectory);
        var tokenizer = Gpt2Tokenizer.Load(_tokenizerDirectory);
        (List<string> training, List<string> heldOut) = PretrainingCorpus.Split(documents, 10, seed: 1);
        _training = PretrainingCorpus.Tokenize(training, tokenizer);
        _heldOut = PretrainingCorpus.Tokenize(heldOut, tokenizer);
        TinyModel = TinyShape with { VocabSize = tokenizer.VocabSize };
    }

    private Gpt2Config TinyModel { get; }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void The_held_out_loss_falls_well_below_chance()
    {
        using PretrainingRun run = Start("learn");
        double before = run.EvaluateHeldOut();
        while (!run.IsCompleted)
        {
            run.TrainStep();
        }
        double after = run.EvaluateHeldOut();

        Assert.InRange(before, Math.Log(TinyModel.VocabSize) - 1, Math.Log(TinyModel.VocabSize) + 1);
        Assert.True(after < before / 2, $"held-out loss went from {before:F3} to {after:F3}");
        Assert.Equal(Settings.Steps * (long)Settings.BatchSize * Settings.ContextLength, run.TrainedTokens);
    }

    [Fact]
    public void The_seed_fixes_every_loss_and_another_seed_changes_them()
    {
        double[] first = Losses(Start("a"), 6);
        double[] again = Losses(Start("b"), 6);
        double[] other = Losses(Start("c", Settings with { Seed = 6 }), 6);

        Assert.Equal(first, again);
        Assert.NotEqual(first, other);
    }

    [Fact]
    public void A_resumed_run_takes_exactly_the_steps_the_uninterrupted_one_takes()
    {
        double[] straight = Losses(Start("straight"), 20);

        string checkpoint;
        double[] firstHalf;
        using (PretrainingRun interrupted = Start("resumed"))
        {
            firstHalf = Enumerable.Range(0, 10).Select(_ => interrupted.TrainStep().Loss).ToArray();
            checkpoint = interrupted.SaveCheckpoint();
        }
        Assert.Equal(checkpoint, CheckpointDirectories.Latest(Path.Combine(_directory, "resumed")));
        using PretrainingRun resumed = PretrainingRun.Resume(checkpoint, Settings, _training, _heldOut, _tokenizerDirectory, Path.Combine(_directory, "resumed"), CPU);
        Assert.Equal(10, resumed.Step);
        double[] secondHalf = Enumerable.Range(0, 10).Select(_ => resumed.TrainStep().Loss).ToArray();

        Assert.Equal(straight, firstHalf.Concat(secondHalf).ToArray());
    }

    [Fact]
    public void A_resume_with_other_settings_or_data_is_refused()
    {
        string checkpoint;
        using (PretrainingRun run = Start("refuse"))
        {
            run.TrainStep();
            checkpoint = run.SaveCheckpoint();
        }
        var otherSettings = Assert.Throws<InvalidDataException>(() =>
            PretrainingRun.Resume(checkpoint, Settings with { LearningRate = 5e-3 }, _training, _heldOut, _tokenizerDirectory, _directory, CPU));
        Assert.Contains("learning_rate", otherSettings.Message);
        var otherData = Assert.Throws<InvalidDataException>(() =>
            PretrainingRun.Resume(checkpoint, Settings, _heldOut, _training, _tokenizerDirectory, _directory, CPU));
        Assert.Contains("other data", otherData.Message);
    }

    [Fact]
    public void The_final_model_is_a_directory_the_server_loads_with_the_weights_trained()
    {
        string final;
        float[] trainedLogits;
        using (PretrainingRun run = Start("final"))
        {
            for (int i = 0; i < 5; i++)
            {
                run.TrainStep();
            }
            final = run.SaveFinal(directory => File.WriteAllText(Path.Combine(directory, "extra.txt"), "x"));
            trainedLogits = LogitsOf(final);
        }

        foreach (string file in new[] { "config.json", "model.safetensors", "vocab.json", "merges.txt", TrainerState.FileName, "extra.txt" })
        {
            Assert.True(File.Exists(Path.Combine(final, file)), file);
        }
        Assert.Equal(5, TrainerState.Read(final).LogHistory.Count(e => e.Loss is not null));
        Gpt2Config saved = Gpt2Config.Load(Path.Combine(final, "config.json"));
        Assert.Equal(TinyModel with { EosTokenId = saved.EosTokenId, BosTokenId = saved.BosTokenId }, saved);
        Assert.NotEqual(LogitsOfFreshModel(), trainedLogits);
    }

    [Fact]
    public void Settings_out_of_range_are_refused_with_the_setting_named()
    {
        var tooLong = Assert.Throws<ArgumentException>(() => Start("bad", Settings with { ContextLength = 64 }));
        Assert.Contains("context length", tooLong.Message);
        var noSteps = Assert.Throws<ArgumentException>(() => Start("bad", Settings with { Steps = 0 }));
        Assert.Contains("steps", noSteps.Message);
    }

    private PretrainingRun Start(string name, PretrainingSettings? settings = null) =>
        PretrainingRun.Start(TinyModel, settings ?? Settings, _training, _heldOut, _tokenizerDirectory, Path.Combine(_directory, name), CPU);

    private static double[] Losses(PretrainingRun run, int steps)
    {
        using (run)
        {
            return Enumerable.Range(0, steps).Select(_ => run.TrainStep().Loss).ToArray();
        }
    }

    private float[] LogitsOf(string directory)
    {
        using Gpt2Model model = CheckpointLoader.Load(directory, ScalarType.Float32, CPU);
        return Logits(model);
    }

    private float[] LogitsOfFreshModel()
    {
        using var model = new Gpt2Model(TinyModel, ScalarType.Float32, CPU);
        RandomCheckpoint.Initialize(model, Settings.Seed);
        return Logits(model);
    }

    private float[] Logits(Gpt2Model model)
    {
        using var noGrad = no_grad();
        using Tensor ids = tensor(_heldOut.Tokens.Take(16).Select(t => (long)t).ToArray(), [1, 16]);  // (1, T)
        using Tensor logits = model.ForwardTraining(ids);                                              // (1, T, V)
        return logits.data<float>().ToArray();
    }
}
