using System.Text.Json;
using LlmServer.Bench.LoadTest;
using LlmServer.Bench.Scenarios;
using LlmServer.Bench.StructuredOutput;

namespace LlmServer.Bench.Tests.StructuredOutput;

public sealed class StructuredOutputBenchmarkTests
{
    [Fact]
    public void ModelAlone_TakesTheIssuesDefaults()
    {
        StructuredOutputBenchmark.Options options = StructuredOutputBenchmark.ParseArguments(["--model", "/m"]);

        Assert.Equal(new StructuredOutputBenchmark.Options("/m", "bench-structured.json"), options);
        Assert.Equal((32, 8, 128, 2), (options.Concurrency, options.ConstrainedRows, options.MaxTokens, options.Rounds));
    }

    [Fact]
    public void EveryFlag_IsRead()
    {
        StructuredOutputBenchmark.Options options = StructuredOutputBenchmark.ParseArguments(
        [
            "--model", "/m", "--result-json", "out.json", "--port", "9001", "--concurrency", "16", "--constrained-rows", "4",
            "--max-tokens", "64", "--rounds", "3",
        ]);

        Assert.Equal(new StructuredOutputBenchmark.Options("/m", "out.json")
        {
            Port = 9001, Concurrency = 16, ConstrainedRows = 4, MaxTokens = 64, Rounds = 3,
        }, options);
    }

    [Theory]
    [InlineData("--model is required", "--rounds", "1")]
    [InlineData("unknown flag '--schema'", "--model", "/m", "--schema", "x")]
    [InlineData("--port needs a value", "--model", "/m", "--port")]
    [InlineData("--rounds: 'two' is not a whole number", "--model", "/m", "--rounds", "two")]
    [InlineData("--max-tokens must be at least 8, not 4", "--model", "/m", "--max-tokens", "4")]
    [InlineData("--constrained-rows (9) cannot exceed --concurrency (8)", "--model", "/m", "--concurrency", "8", "--constrained-rows", "9")]
    public void BadArguments_ThrowNamingTheFlag(string message, params string[] args)
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => StructuredOutputBenchmark.ParseArguments(args));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public async Task BadArguments_ExitWithTwo()
    {
        Assert.Equal(2, await StructuredOutputBenchmark.RunCommandAsync(["--model"]));
    }

    [Fact]
    public void Result_IsWrittenInSnakeCase_WithTheFiguresTheDocsQuote()
    {
        var summary = new LatencySummary(10, 2.5, 2, 0.5, 4);
        var result = new StructuredOutputBenchmark.Result("m",
            [new GrammarCosts.CompileCost("flat", 300, 12.5, 0.75)],
            new GrammarCosts.TrieCost(50257, 120000, 3, 80),
            [new GrammarCosts.MaskCost("flat", 30, 10, summary, summary)],
            new ConstrainedThroughput.Result(32, 8, 128, 20,
                [new ConstrainedThroughput.Wave("mixed", 1, 32, 8, 0, 4000, 2, 2000, 125, 110, 0)], 2100, 2000, 0.952));

        JsonElement json = JsonDocument.Parse(JsonSerializer.Serialize(result, ServingBenchmarkResult.JsonOptions)).RootElement;

        Assert.Equal(12.5, json.GetProperty("compile")[0].GetProperty("median_compile_microseconds").GetDouble());
        Assert.Equal(0.75, json.GetProperty("compile")[0].GetProperty("median_cached_lookup_microseconds").GetDouble());
        Assert.Equal(120000, json.GetProperty("trie").GetProperty("node_count").GetInt32());
        Assert.Equal(4, json.GetProperty("masks")[0].GetProperty("in_string_value").GetProperty("p99").GetDouble());
        Assert.Equal(2.5, json.GetProperty("masks")[0].GetProperty("structural").GetProperty("mean").GetDouble());
        JsonElement throughput = json.GetProperty("throughput");
        Assert.Equal(0.952, throughput.GetProperty("mixed_over_unconstrained").GetDouble());
        Assert.Equal(110, throughput.GetProperty("waves")[0].GetProperty("mean_completion_tokens_constrained").GetDouble());
    }

    [Theory]
    [InlineData("""{"text":"a reply"}""", true)]
    [InlineData("""{"text":"cut off""", false)]
    [InlineData("""{"text":1}""", false)]
    [InlineData("""{"text":"a","more":"b"}""", false)]
    [InlineData("plain words", false)]
    public void OnlyWholeLongTextDocuments_CountAsValidReplies(string content, bool valid)
    {
        Assert.Equal(valid, ConstrainedThroughput.IsLongTextReply(content));
    }
}
