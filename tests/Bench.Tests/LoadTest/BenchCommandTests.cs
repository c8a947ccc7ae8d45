using LlmServer.Bench.LoadTest;

namespace LlmServer.Bench.Tests.LoadTest;

public sealed class BenchCommandTests
{
    [Fact]
    public void NoFlags_GiveVllmsDefaultsAgainstTheLocalServer()
    {
        ServingBenchmarkOptions options = BenchCommand.ParseOptions([], out string? resultJson);

        Assert.Equal(new Uri("http://127.0.0.1:8000"), options.BaseUrl);
        Assert.Null(options.Model);
        Assert.Equal("/v1/completions", options.Endpoint);
        Assert.Equal(100, options.NumPrompts);
        Assert.Equal(128, options.InputLength);
        Assert.Equal(128, options.OutputLength);
        Assert.Null(options.MaxConcurrency);
        Assert.Null(options.RequestRate);
        Assert.Null(resultJson);
    }

    [Fact]
    public void EveryFlag_IsRead_InBothSpellings()
    {
        ServingBenchmarkOptions options = BenchCommand.ParseOptions(
        [
            "--base-url", "http://10.0.0.5:9000/", "--model=gpt2", "--endpoint", "/v1/chat/completions",
            "--num-prompts", "7", "--input-len=64", "--output-len", "32", "--max-concurrency", "4",
            "--request-rate", "2.5", "--seed", "-3", "--temperature", "0.7", "--shared-prefix", "Be brief.",
            "--result-json", "out/result.json",
        ], out string? resultJson);

        Assert.Equal(new ServingBenchmarkOptions
        {
            BaseUrl = new Uri("http://10.0.0.5:9000/"),
            Model = "gpt2",
            Endpoint = "/v1/chat/completions",
            NumPrompts = 7,
            InputLength = 64,
            OutputLength = 32,
            MaxConcurrency = 4,
            RequestRate = 2.5,
            Seed = -3,
            Temperature = 0.7,
            SharedPrefix = "Be brief.",
        }, options);
        Assert.Equal("out/result.json", resultJson);
    }

    [Fact]
    public void InfiniteRequestRate_MeansAllAtOnce()
    {
        Assert.Null(BenchCommand.ParseOptions(["--request-rate", "inf"], out _).RequestRate);
    }

    [Theory]
    [InlineData("unknown flag '--prompts'", "--prompts", "3")]
    [InlineData("unexpected argument 'limits'", "limits")]
    [InlineData("--num-prompts needs a value", "--num-prompts")]
    [InlineData("--model needs a value", "--model", "--seed", "1")]
    [InlineData("--num-prompts: 'ten' is not a whole number", "--num-prompts", "ten")]
    [InlineData("--output-len must be at least 1, not 0", "--output-len", "0")]
    [InlineData("--max-concurrency must be at least 1, not -2", "--max-concurrency=-2")]
    [InlineData("--request-rate: '0' is neither a positive number of requests per second nor inf", "--request-rate", "0")]
    [InlineData("--temperature: '-1' is not a temperature (a number, 0 or more)", "--temperature=-1")]
    [InlineData("--endpoint: '/v1/embeddings' is neither /v1/completions nor /v1/chat/completions", "--endpoint", "/v1/embeddings")]
    [InlineData("--base-url: 'localhost:8000' is not an http:// or https:// URL", "--base-url", "localhost:8000")]
    public void BadArguments_ThrowNamingTheFlag(string message, params string[] args)
    {
        ArgumentException error = Assert.Throws<ArgumentException>(() => BenchCommand.ParseOptions(args, out _));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public async Task BadArguments_ExitWithTwo_AndHelpWithZero()
    {
        Assert.Equal(2, await BenchCommand.RunAsync(["--num-prompts", "x"]));
        Assert.Equal(0, await BenchCommand.RunAsync(["--help"]));
    }

    [Theory]
    [InlineData("large-bodies")]
    [InlineData("large-bodies", "--model")]
    [InlineData("large-bodies", "--model", "m", "--bogus", "1")]
    [InlineData("large-bodies", "--model", "m", "--timeout", "0")]
    public async Task LargeBodies_BadArguments_ExitWithTwo(params string[] args)
    {
        Assert.Equal(2, await BenchCommands.RunAsync(args));
    }

    [Theory]
    [InlineData("weight-forms")]
    [InlineData("weight-forms", "--model")]
    [InlineData("weight-forms", "--model", "m", "--forms", "float32,int4")]
    [InlineData("weight-forms", "--model", "m", "--forms", "int8,int8")]
    [InlineData("weight-forms", "--model", "m", "--concurrency", "0")]
    [InlineData("weight-forms", "--model", "m", "--weights", "int8")]
    [InlineData("suite", "--model", "m", "--weight-forms", "int4")]
    public async Task WeightForms_BadArguments_ExitWithTwo(params string[] args)
    {
        Assert.Equal(2, await BenchCommands.RunAsync(args));
    }

    [Fact]
    public async Task WeightForms_Help_ExitsWithZero()
    {
        Assert.Equal(0, await BenchCommands.RunAsync(["weight-forms", "--help"]));
    }

    [Fact]
    public void Help_ListsEveryFlag()
    {
        string help = BenchCommand.Help();
        foreach (string flag in new[] { "--base-url", "--model", "--endpoint", "--num-prompts", "--num-warmups", "--input-len", "--output-len", "--max-concurrency", "--request-rate", "--seed", "--temperature", "--shared-prefix", "--result-json" })
        {
            Assert.Contains(flag, help);
        }
    }
}
