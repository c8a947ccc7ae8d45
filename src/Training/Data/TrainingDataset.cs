using LlmServer.Inference.Tokenization;

namespace LlmServer.Training.Data;

/// <summary>
/// The tokenized examples of one JSONL file, each at most the model's context long, with counts
/// of what loading had to change so that a job can report it instead of hiding it.
/// </summary>
public sealed class TrainingDataset
{
    private TrainingDataset(IReadOnlyList<TrainingExample> examples, int truncatedCount, int droppedCount)
    {
        Examples = examples;
        TruncatedCount = truncatedCount;
        DroppedCount = droppedCount;
    }

    public IReadOnlyList<TrainingExample> Examples { get; }

    /// <summary>Examples longer than the maximum length, kept with their end cut off.</summary>
    public int TruncatedCount { get; }

    /// <summary>Examples left out because no token of theirs is trained (after truncation).</summary>
    public int DroppedCount { get; }

    public long TokenCount => Examples.Sum(e => (long)e.Length);
    public long TrainedTokenCount => Examples.Sum(e => (long)e.TrainedTokenCount);

    /// <summary>Reads the file a line at a time; blank lines are skipped.</summary>
    /// <exception cref="InvalidDataException">A line is not an example that can be encoded; the message names the file and line.</exception>
    public static TrainingDataset Load(string jsonlPath, ITokenizer tokenizer, ChatPromptFormatter formatter, int maxLength)
    {
        var encoder = new TrainingExampleEncoder(tokenizer, formatter);
        var examples = new List<TrainingExample>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(jsonlPath))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            try
            {
                examples.Add(encoder.Encode(line));
            }
            catch (FormatException e)
            {
                throw new InvalidDataException($"{jsonlPath}: line {lineNumber}: {e.Message}", e);
            }
        }
        return FromExamples(examples, maxLength);
    }

    /// <summary>Truncates and filters already encoded examples.</summary>
    public static TrainingDataset FromExamples(IEnumerable<TrainingExample> examples, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        var kept = new List<TrainingExample>();
        int truncated = 0, dropped = 0;
        foreach (TrainingExample example in examples)
        {
            TrainingExample fitted = example.Truncate(maxLength);
            if (fitted.Length < example.Length)
            {
                truncated++;
            }
            if (fitted.TrainedTokenCount == 0)
            {
                dropped++;
                continue;
            }
            kept.Add(fitted);
        }
        return new TrainingDataset(kept, truncated, dropped);
    }
}
