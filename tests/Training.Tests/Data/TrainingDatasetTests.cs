using LlmServer.Training.Data;

namespace LlmServer.Training.Tests.Data;

public sealed class TrainingDatasetTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("dataset-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Long_examples_lose_their_end_and_examples_with_nothing_to_train_are_dropped()
    {
        string longWords = string.Join(' ', Enumerable.Repeat("word", 80));
        string path = Write(
            """{"prompt":"Short","completion":" answer"}""",
            "",
            $$"""{"prompt":"{{longWords}}","completion":" lost"}""",
            $$"""{"prompt":"Keep","completion":" {{longWords}}"}""",
            """{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hey","weight":0}]}""");

        TrainingDataset dataset = TrainingDataset.Load(path, AnimalSoundTask.Tokenizer, AnimalSoundTask.Formatter, maxLength: 64);

        // The long prompt keeps only prompt tokens (dropped); the long completion keeps some of itself.
        Assert.Equal(2, dataset.TruncatedCount);
        Assert.Equal(2, dataset.DroppedCount);
        Assert.Equal(2, dataset.Examples.Count);
        Assert.All(dataset.Examples, e => Assert.True(e.Length <= 64));
        Assert.Equal(64, dataset.Examples[1].Length);
        Assert.Equal(AnimalSoundTask.Tokenizer.Encode("Keep"), dataset.Examples[1].TokenIds[..1]);
        Assert.Equal(dataset.Examples.Sum(e => e.TrainedTokenCount), dataset.TrainedTokenCount);
    }

    [Fact]
    public void A_bad_line_fails_the_load_with_its_file_and_line_number()
    {
        string path = Write("""{"prompt":"a","completion":" b"}""", """{"prompt":"a"}""");

        var error = Assert.Throws<InvalidDataException>(() => TrainingDataset.Load(path, AnimalSoundTask.Tokenizer, AnimalSoundTask.Formatter, 128));

        Assert.Equal($"{path}: line 2: \"completion\" is missing", error.Message);
    }

    private string Write(params string[] lines)
    {
        string path = Path.Combine(_directory, "train.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }
}
