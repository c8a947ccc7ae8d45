using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace LlmServer.Training.Checkpoints;

/// <summary>
/// trainer_state.json: where a run stood when a checkpoint was written, enough to resume it
/// (with the optimizer state saved beside it) and to show its history.
/// </summary>
public sealed record TrainerState
{
    public const string FileName = "trainer_state.json";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public required int CompletedEpochs { get; init; }
    public required int OptimizerStep { get; init; }
    public required int TotalSteps { get; init; }
    public required long TrainedTokens { get; init; }

    /// <summary>"lora" or "full" for a fine-tune, "pretraining" for a model trained from scratch.</summary>
    public required string Kind { get; init; }

    /// <summary>
    /// The only randomness of a run is the adapter's initialization and each epoch's shuffle, both
    /// derived from this seed and the epoch number, so the seed is the whole RNG state.
    /// </summary>
    public required long Seed { get; init; }

    /// <summary>The settings as JSON; a resume must bring the same ones.</summary>
    public required JsonObject Settings { get; init; }

    /// <summary>Example and token counts of the training set, so that a resume on other data is refused.</summary>
    public required string TrainingDataFingerprint { get; init; }

    public required IReadOnlyList<LogEntry> LogHistory { get; init; }

    public sealed record LogEntry
    {
        public int Step { get; init; }
        public int Epoch { get; init; }
        public double? Loss { get; init; }
        public double? TokenAccuracy { get; init; }
        public double? LearningRate { get; init; }
        public double? GradNorm { get; init; }
        public double? ValidationLoss { get; init; }
        public double? ValidationTokenAccuracy { get; init; }

        /// <summary>Training time so far (pretraining records it; a fine-tune's events carry their own times).</summary>
        public double? ElapsedSeconds { get; init; }
    }

    public static JsonObject SettingsJson<TSettings>(TSettings settings) =>
        JsonSerializer.SerializeToNode(settings, Json)!.AsObject();

    /// <summary>The names of the settings that differ from <paramref name="expected"/>: a resume with any is refused.</summary>
    public IReadOnlyList<string> SettingsDifferingFrom(JsonObject expected) =>
        expected.Select(p => p.Key)
            .Union(Settings.Select(p => p.Key))
            .Where(key => !JsonNode.DeepEquals(expected[key], Settings[key]))
            .ToList();

    public void Write(string directory) =>
        File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(this, Json));

    /// <exception cref="InvalidDataException">The file is missing or unreadable; the message names it.</exception>
    public static TrainerState Read(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            throw new InvalidDataException($"{path}: missing: a checkpoint to resume from needs {FileName}");
        }
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(File.ReadAllText(path), Json)
                ?? throw new InvalidDataException($"{path}: not a JSON object");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a trainer state ({e.Message})", e);
        }
    }
}
