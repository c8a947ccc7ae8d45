using System.Text.Json.Nodes;
using LlmServer.Bench.Parity;

namespace LlmServer.Bench.Tests.Parity;

/// <summary>
/// <c>bench parity</c> over the real fixtures and engine: float32 on the CPU matches every reference, a
/// reference moved by a hundredth of a nat fails, int8 passes on its own tolerance while reporting
/// the continuations it changed, and bad flags are refused before anything loads.
/// </summary>
public sealed class ReferenceParityTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("parity-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Float32_on_the_cpu_matches_every_fixture_reference()
    {
        string resultPath = Path.Combine(_directory, "parity.json");

        int exitCode = await ReferenceParity.RunCommandAsync(["--fixtures", TestFixtures.ModelsDirectory, "--result-json", resultPath]);

        Assert.Equal(0, exitCode);
        JsonNode result = JsonNode.Parse(await File.ReadAllTextAsync(resultPath))!;
        Assert.True(result["passed"]!.GetValue<bool>());
        JsonArray models = result["models"]!.AsArray();
        Assert.Equal(4, models.Count);
        foreach (JsonNode model in models.Select(m => m!))
        {
            Assert.Equal(model["cases"]!.GetValue<int>(), model["greedy_equal"]!.GetValue<int>());
            Assert.Equal(model["steps_compared"]!.GetValue<int>(), model["top5_equal"]!.GetValue<int>());
            Assert.InRange(model["max_logprob_error"]!.GetValue<double>(), 0, 2e-3);
            Assert.InRange(model["max_forced_logprob_error"]!.GetValue<double>(), 0, 2e-3);
        }
    }

    [Fact]
    public async Task A_reference_logprob_moved_by_a_hundredth_of_a_nat_fails()
    {
        string fixtures = Path.Combine(_directory, "models");
        string copy = Path.Combine(fixtures, "tiny-gpt2");
        Directory.CreateDirectory(copy);
        foreach (string file in Directory.GetFiles(Path.Combine(TestFixtures.ModelsDirectory, "tiny-gpt2")))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }
        string referencePath = Path.Combine(copy, "reference.json");
        JsonNode reference = JsonNode.Parse(await File.ReadAllTextAsync(referencePath))!;
        JsonNode step = reference["cases"]![0]!["greedy"]![3]!;
        step["logprob"] = step["logprob"]!.GetValue<double>() - 0.01;
        await File.WriteAllTextAsync(referencePath, reference.ToJsonString());
        string resultPath = Path.Combine(_directory, "parity.json");

        int exitCode = await ReferenceParity.RunCommandAsync(["--fixtures", fixtures, "--result-json", resultPath]);

        Assert.Equal(1, exitCode);
        JsonNode model = JsonNode.Parse(await File.ReadAllTextAsync(resultPath))!["models"]![0]!;
        Assert.False(model["passed"]!.GetValue<bool>());
        Assert.InRange(model["max_forced_logprob_error"]!.GetValue<double>(), 0.009, 0.011);
        Assert.Equal(2, model["greedy_equal"]!.GetValue<int>());                                   // the tokens themselves still agree
    }

    [Fact]
    public async Task Int8_passes_on_its_own_tolerance_and_reports_the_continuations_it_changed()
    {
        IReadOnlyList<ReferenceParity.ModelResult> results = await ReferenceParity.RunAsync(
            ReferenceParity.Parse(["--fixtures", TestFixtures.ModelsDirectory, "--quantization", "int8"]));

        Assert.Equal(4, results.Count);
        Assert.All(results, r => Assert.Null(r.Error));
        Assert.All(results, r => Assert.InRange(r.MaxForcedLogprobError, 0, 1.5));
        // The int8 weights are really in use: the random-weight models' near-ties flip.
        Assert.Contains(results, r => r.GreedyEqual < r.Cases);
        Assert.Contains(results, r => r.MaxForcedLogprobError > 0.1);
    }

    [Theory]
    [InlineData("--weights", "int8")]                 // not a flag of this command
    [InlineData("--dtype", "float16")]                // CUDA only
    [InlineData("--quantization", "int4")]
    [InlineData("--tolerance", "tight")]
    [InlineData("--tolerance", "-1")]
    [InlineData("--fixtures")]                        // a flag without its value
    public async Task Bad_flags_are_refused_with_exit_code_2(params string[] flags)
    {
        string[] args = flags[0] == "--fixtures" ? flags : ["--fixtures", TestFixtures.ModelsDirectory, .. flags];
        Assert.Equal(2, await ReferenceParity.RunCommandAsync(args));
    }

    [Fact]
    public async Task A_folder_without_any_reference_fails_rather_than_passing_on_nothing()
    {
        Assert.Equal(1, await ReferenceParity.RunCommandAsync(["--fixtures", _directory]));
    }
}
