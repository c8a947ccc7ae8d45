using System.Diagnostics;
using System.Text.Json.Nodes;
using LlmServer.Inference.Tests;

namespace LlmServer.Deploy.Tests;

/// <summary>
/// deploy/gpu (issue 19): the runner's short CPU form, against the server this build made, runs every
/// step and writes one JSON file that passes; and the package's list of libtorch libraries to leave
/// out covers every one the build brings, so the glue can only find the GPU machine's PyTorch.
/// </summary>
public sealed class GpuRunnerTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("gpu-run-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task The_short_cpu_form_runs_every_step_and_writes_one_passing_json()
    {
        string resultPath = Path.Combine(_directory, "gpu-run.json");
        var start = new ProcessStartInfo("bash")
        {
            ArgumentList =
            {
                RepositoryFiles.PathOf("deploy/gpu/run.sh"), "--device", "cpu", "--server", AppContext.BaseDirectory,
                "--fixtures", TestFixtures.FixturesDirectory, "--short", "--out", resultPath, "--limit", "300",
            },
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using Process run = Process.Start(start)!;
        Task<string> output = run.StandardOutput.ReadToEndAsync();
        Task<string> errors = run.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(6));
        await run.WaitForExitAsync(limit.Token);

        Assert.True(run.ExitCode == 0, $"run.sh exited {run.ExitCode}:\n{await output}\n{await errors}");
        JsonNode result = JsonNode.Parse(File.ReadAllText(resultPath))!;
        Assert.True(result["passed"]!.GetValue<bool>());
        Assert.Equal("cpu", result["device"]!.GetValue<string>());
        JsonNode[] steps = result["steps"]!.AsArray().Select(s => s!).ToArray();
        Assert.Equal(["probe", "parity-float32", "parity-bfloat16", "random-models", "bench-gpt2", "bench-qwen2", "transformers"],
            steps.Select(s => s["name"]!.GetValue<string>()));
        foreach (string parity in new[] { "parity-float32", "parity-bfloat16" })
        {
            JsonNode parityResult = steps.Single(s => s["name"]!.GetValue<string>() == parity)["result"]!;
            Assert.True(parityResult["passed"]!.GetValue<bool>());
            Assert.Equal(4, parityResult["models"]!.AsArray().Count);
        }
        foreach (string bench in new[] { "bench-gpt2", "bench-qwen2" })
        {
            JsonNode benchResult = steps.Single(s => s["name"]!.GetValue<string>() == bench)["result"]!;
            Assert.True(benchResult["concurrency_1"]!["output_throughput"]!.GetValue<double>() > 0);
            Assert.True(benchResult["concurrency_16"]!["output_throughput"]!.GetValue<double>() > 0);
        }
        // Python here has no PyTorch; where it has, the step must have run and passed.
        JsonNode transformers = steps[^1];
        Assert.True(transformers["skipped"] is not null || transformers["exit_code"]!.GetValue<int>() == 0);
    }

    [Fact]
    public void The_package_leaves_out_every_libtorch_library_the_build_brings()
    {
        string pack = RepositoryFiles.Read("deploy/gpu/pack.sh");
        string[] natives = Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native"))
            .Select(Path.GetFileName).Select(name => name!)
            .Where(name => name is not ("libLibTorchSharp.so" or "libe_sqlite3.so"))
            .ToArray();

        Assert.Contains("libtorch_cpu.so", natives);
        Assert.All(natives, name => Assert.True(
            pack.Contains($" {name}", StringComparison.Ordinal) || (name.StartsWith("libgomp-", StringComparison.Ordinal) && pack.Contains("libgomp-*.so*", StringComparison.Ordinal)),
            $"pack.sh keeps {name}, a library of libtorch's own"));
    }
}
