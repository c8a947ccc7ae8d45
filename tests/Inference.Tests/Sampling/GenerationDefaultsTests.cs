using LlmServer.Inference.Sampling;

namespace LlmServer.Inference.Tests.Sampling;

/// <summary>
/// generation_config.json's sampling defaults as vLLM's <c>--generation-config auto</c> reads them: the file's
/// value for what a request leaves out, the request's own value always, the neutral default otherwise.
/// </summary>
public sealed class GenerationDefaultsTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("generation-defaults-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private GenerationDefaults LoadFile(string json)
    {
        File.WriteAllText(Path.Combine(_directory, GenerationDefaults.FileName), json);
        return GenerationDefaults.Load(_directory);
    }

    [Fact]
    public void NoFile_GivesTheNeutralDefaults()
    {
        GenerationDefaults defaults = GenerationDefaults.Load(_directory);

        Assert.Same(GenerationDefaults.None, defaults);
        Assert.True(defaults.IsEmpty);
        Assert.Equal(1.0, defaults.TemperatureFor(null));
        Assert.Equal(1.0, defaults.TopPFor(null));
        Assert.Equal(0, defaults.TopKFor(null));
        Assert.Null(defaults.MaxTokens);
    }

    [Theory]
    [InlineData("llama3-random-2l-64d")]
    [InlineData("qwen3-random-2l-64d")]
    public void FixtureFiles_WithOnlyTokenIds_SetNoSamplingDefault(string model)
    {
        // Their generation_config.json holds bos/eos/pad ids only: nothing a request's sampling takes.
        GenerationDefaults defaults = GenerationDefaults.Load(TestFixtures.ModelDirectory(model));

        Assert.True(defaults.IsEmpty);
        Assert.Equal(1.0, defaults.TemperatureFor(null));
    }

    [Fact]
    public void FileValues_ApplyWhereTheRequestIsSilent_AndTheRequestWinsWhereItIsNot()
    {
        // Qwen2.5-Instruct's published generation_config.json, less repetition_penalty.
        GenerationDefaults defaults = LoadFile("""
            {"bos_token_id": 151643, "do_sample": true, "eos_token_id": [151645, 151643], "pad_token_id": 151643,
             "temperature": 0.7, "top_p": 0.8, "top_k": 20, "max_new_tokens": 512, "transformers_version": "4.37.0"}
            """);

        Assert.Equal(0.7, defaults.TemperatureFor(null));
        Assert.Equal(0.8, defaults.TopPFor(null));
        Assert.Equal(20, defaults.TopKFor(null));
        Assert.Equal(512, defaults.MaxTokens);
        // A request's own value, greedy included, always wins.
        Assert.Equal(0.0, defaults.TemperatureFor(0.0));
        Assert.Equal(1.0, defaults.TopPFor(1.0));
        Assert.Equal(-1, defaults.TopKFor(-1));
        Assert.Equal("temperature 0.7, top_p 0.8, top_k 20, max_new_tokens 512", defaults.AppliedSummary);
        Assert.Null(defaults.NotAppliedSummary);
    }

    [Fact]
    public void DoSampleFalse_IsNotRead_AsVllmDoesNotReadIt()
    {
        // vLLM's get_diff_sampling_param reads six keys, do_sample not among them: the temperature applies.
        GenerationDefaults defaults = LoadFile("""{"do_sample": false, "temperature": 0.6, "top_p": 0.9}""");

        Assert.Equal(0.6, defaults.TemperatureFor(null));
        Assert.Equal(0.9, defaults.TopPFor(null));
    }

    [Fact]
    public void NullValues_AreAbsent()
    {
        GenerationDefaults defaults = LoadFile("""{"temperature": null, "top_p": null, "top_k": null, "max_new_tokens": null, "min_p": null}""");

        Assert.True(defaults.IsEmpty);
    }

    [Fact]
    public void ParametersTheSamplerLacks_AreListed_UnlessNeutral()
    {
        GenerationDefaults applied = LoadFile("""{"temperature": 0.7, "repetition_penalty": 1.05, "min_p": 0.05}""");
        Assert.Equal(0.7, applied.TemperatureFor(null));
        Assert.Equal(new Dictionary<string, double> { ["min_p"] = 0.05, ["repetition_penalty"] = 1.05 }, applied.NotApplied);
        Assert.Equal("min_p 0.05, repetition_penalty 1.05", applied.NotAppliedSummary);

        GenerationDefaults neutral = LoadFile("""{"repetition_penalty": 1.0, "min_p": 0}""");
        Assert.True(neutral.IsEmpty);
    }

    [Theory]
    [InlineData("{\"temperature\": 0.7,", "not valid JSON")]
    [InlineData("[1, 2]", "expected a JSON object, got array")]
    [InlineData("{\"temperature\": \"hot\"}", "temperature holds \"hot\"; it must be a number of at least 0")]
    [InlineData("{\"temperature\": -0.5}", "temperature holds -0.5; it must be a number of at least 0")]
    [InlineData("{\"top_p\": 1.5}", "top_p holds 1.5; it must be a number above 0 and at most 1")]
    [InlineData("{\"top_p\": 0}", "top_p holds 0; it must be a number above 0 and at most 1")]
    [InlineData("{\"top_k\": 2.5}", "top_k holds 2.5; it must be -1, 0 (no cut) or a positive count")]
    [InlineData("{\"top_k\": -2}", "top_k holds -2; it must be -1, 0 (no cut) or a positive count")]
    [InlineData("{\"max_new_tokens\": 0}", "max_new_tokens holds 0; it must be a positive count")]
    [InlineData("{\"repetition_penalty\": 0}", "repetition_penalty holds 0; it must be a positive number")]
    [InlineData("{\"min_p\": 2}", "min_p holds 2; it must be a number from 0 to 1")]
    public void BadFile_IsOneLineNamingTheFileAndTheProblem(string json, string problem)
    {
        var error = Assert.Throws<InvalidDataException>(() => LoadFile(json));

        string path = Path.Combine(_directory, GenerationDefaults.FileName);
        Assert.StartsWith($"{path}: ", error.Message);
        Assert.Contains(problem, error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }
}
