using System.Diagnostics;
using Microsoft.Extensions.Configuration;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>The llmserver executable as an operator runs it: flags, help, and failing loudly on a bad checkpoint.</summary>
public sealed class CommandLineTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("cli-tests-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private static Task<(int ExitCode, string Output)> RunAsync(params string[] args) =>
        LlmServerProcess.RunAsync(TimeSpan.FromSeconds(60), args);

    [Fact]
    public async Task Serve_help_lists_every_flag_with_its_default()
    {
        var (exitCode, output) = await RunAsync("serve", "--help");
        Assert.Equal(0, exitCode);
        foreach (LlmServer.Host.CommandLineFlag flag in LlmServer.Host.ServeCommandLine.Flags)
        {
            string line = Assert.Single(output.Split('\n'), l => l.TrimStart().StartsWith(flag.Name + " ", StringComparison.Ordinal));
            Assert.Contains($"[default: {flag.Default}]", line);
        }
        // Every option can be set by a flag.
        foreach (System.Reflection.PropertyInfo property in typeof(LlmServer.Host.ServerOptions).GetProperties().Where(p => p.CanWrite))
        {
            Assert.Contains(LlmServer.Host.ServeCommandLine.Flags, f => f.ConfigurationKey == $"Server:{property.Name}");
        }
        Assert.Contains("[default: 8000]", output);
        Assert.Contains("--drain-timeout", output);
    }

    [Fact]
    public async Task A_truncated_checkpoint_exits_non_zero_with_one_line_naming_the_file()
    {
        string model = Path.Combine(_scratch, "truncated");
        Directory.CreateDirectory(model);
        string source = TestFixtures.ModelDirectory("gpt2-random-2l-64d");
        foreach (string file in Directory.GetFiles(source))
        {
            File.Copy(file, Path.Combine(model, Path.GetFileName(file)));
        }
        string weights = Path.Combine(model, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        File.WriteAllBytes(weights, bytes[..1000]);

        var (exitCode, output) = await RunAsync("serve", "--model", model, "--port", "0");

        Assert.NotEqual(0, exitCode);
        string[] errorLines = output.Split('\n').Where(l => l.Contains(weights)).ToArray();
        Assert.Single(errorLines);
        Assert.Contains("truncated", errorLines[0]);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task An_unsupported_model_type_exits_non_zero_naming_config_json()
    {
        string model = Path.Combine(_scratch, "gemma");
        Directory.CreateDirectory(model);
        File.WriteAllText(Path.Combine(model, "config.json"), "{\"model_type\": \"gemma2\", \"architectures\": [\"Gemma2ForCausalLM\"]}");

        var (exitCode, output) = await RunAsync("serve", "--model", model, "--port", "0");

        Assert.NotEqual(0, exitCode);
        Assert.Contains($"{Path.Combine(model, "config.json")}: unsupported architecture 'Gemma2ForCausalLM'", output);
        Assert.Contains("supported: GPT2LMHeadModel, LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM", output);
    }

    [Theory]
    [InlineData("--bogus", "1", "unknown flag '--bogus'")]
    [InlineData("--kv-cache-memory", "lots", "error: --kv-cache-memory: must be a size")]
    [InlineData("--max-request-body", "huge", "error: --max-request-body: must be a size such as 8MiB")]
    [InlineData("--model", "/no/such/dir", "error: --model: must be an existing model directory")]
    [InlineData("--organization", "my:org", "error: --organization: must be non-empty, without ':'")]
    [InlineData("--port", "eighty", "error: --port: must be a whole number (got 'eighty')")]
    [InlineData("--drain-timeout", "-5", "error: --drain-timeout: must be between 0 and 3600")]
    [InlineData("--log-format", "xml", "error: --log-format: must be text or json")]
    [InlineData("--dtype", "float16", "error: --dtype: float16 needs --device cuda")]
    [InlineData("--quantization", "foo", "error: --quantization: must be none or int8")]
    [InlineData("--kv-cache-dtype", "foo", "error: --kv-cache-dtype: must be auto, float32 or bfloat16")]
    [InlineData("--otlp-endpoint", "collector:4317", "error: --otlp-endpoint: must be an http:// or https:// URL")]
    [InlineData("--allowed-origins", "http://localhost:3000/", "error: --allowed-origins: 'http://localhost:3000/' is not an origin")]
    [InlineData("--allowed-origins", "*,http://localhost:3000", "error: --allowed-origins: * allows every origin and stands alone")]
    [InlineData("--allowed-headers", "Authorization;Content-Type", "error: --allowed-headers: must be * or a comma-separated list")]
    public async Task Bad_flags_are_refused_with_a_clear_message(string flag, string value, string message)
    {
        string[] args = flag == "--model"
            ? ["serve", flag, value]
            : ["serve", "--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), flag, value];
        var (exitCode, output) = await RunAsync(args);
        Assert.Equal(2, exitCode);
        Assert.Contains(message, output);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task Several_bad_values_from_flags_and_environment_give_one_error_line_each_and_exit_2()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { Path.Combine(AppContext.BaseDirectory, "llmserver.dll"), "serve",
            "--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "--port", "70000", "--device", "tpu" })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["LLMSERVER_Server__MaxNumSeqs"] = "0";
        using Process process = Process.Start(start)!;
        string output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(60)).Token);

        Assert.Equal(2, process.ExitCode);
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(3, lines.Length);
        Assert.Contains("error: --port: must be between 0 and 65535.", lines);
        Assert.Contains("error: --device: must be cpu, cuda or cuda:N", lines);
        Assert.Contains("error: --max-num-seqs: must be between 1 and 4096.", lines);
    }

    [Fact]
    public void The_shipped_appsettings_json_holds_the_defaults()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "appsettings.json");
        Assert.True(File.Exists(path), "appsettings.json is not copied next to the server");
        var configuration = new Microsoft.Extensions.Configuration.ConfigurationBuilder().AddJsonFile(path).Build();
        var shipped = new LlmServer.Host.ServerOptions();
        Microsoft.Extensions.Configuration.ConfigurationBinder.Bind(configuration.GetSection("Server"), shipped);
        var defaults = new LlmServer.Host.ServerOptions();
        foreach (System.Reflection.PropertyInfo property in typeof(LlmServer.Host.ServerOptions).GetProperties().Where(p => p.CanWrite))
        {
            Assert.Equal(property.GetValue(defaults), property.GetValue(shipped));
        }
    }

    [Fact]
    public async Task The_same_key_for_inference_and_admin_is_refused()
    {
        var (exitCode, output) = await RunAsync(["serve", "--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"),
            "--api-key", "sk-same", "--admin-key", "sk-same"]);
        Assert.Equal(2, exitCode);
        Assert.Contains("error: --api-key: --api-key and --admin-key must differ", output);
        Assert.DoesNotContain("sk-same", output);
    }

    [Fact]
    public async Task A_port_another_process_listens_on_is_one_line_and_exit_2()
    {
        var occupant = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        occupant.Start();
        try
        {
            int port = ((System.Net.IPEndPoint)occupant.LocalEndpoint).Port;
            var (exitCode, output) = await RunAsync(["serve", "--model", TestFixtures.ModelDirectory("gpt2-random-2l-64d"),
                "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            Assert.Equal(2, exitCode);
            string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            Assert.Equal($"error: --port: http://127.0.0.1:{port} is already in use by another process (stop it, or choose another --port)", line);
        }
        finally
        {
            occupant.Stop();
        }
    }
}
