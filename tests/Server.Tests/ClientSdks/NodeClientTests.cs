using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests.ClientSdks;

/// <summary>The server the Node client scenarios talk to: the Qwen3 fixture (random weights), which takes tools.</summary>
public sealed class NodeClientServer : IAsyncLifetime
{
    public const string Model = "qwen3-random-2l-64d";

    public RunningServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Task installed = NodeClients.EnsureInstalledAsync();
        Server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "64MiB"]);
        await installed;
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Real clients against structured outputs and tool calls: each scenario in tests/Clients drives the official OpenAI
/// Node SDK or the Vercel AI SDK against the server (chat completions, and the Responses API that the AI SDK's default
/// provider speaks), checks what it gets back (zod validation, streamed and
/// non-streamed calls alike) and prints one JSON line; a scenario that exits non-zero fails here with that line.
/// </summary>
public sealed class NodeClientTests(NodeClientServer fixture) : IClassFixture<NodeClientServer>
{
    [Theory]
    [InlineData("openai-parse")]
    [InlineData("openai-stream-tools")]
    [InlineData("ai-generate-object")]
    [InlineData("ai-tools")]
    [InlineData("ai-responses")]
    [InlineData("openai-responses")]
    public async Task Scenario_passes(string scenario)
    {
        NodeRun run = await NodeClients.RunAsync(scenario, new Uri(fixture.Server.BaseAddress, "/v1").ToString(), NodeClientServer.Model);

        Assert.True(run.ExitCode == 0, $"{scenario} exited with {run.ExitCode}:\n{run.Output}");
        string result = run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        using JsonDocument line = JsonDocument.Parse(result);
        Assert.Equal(scenario, line.RootElement.GetProperty("scenario").GetString());
        Assert.True(line.RootElement.GetProperty("ok").GetBoolean(), result);
    }
}

/// <summary>The bundled demo model, as `dotnet run` serves it with no --model: the one model here that calls a tool by itself.</summary>
public sealed class DemoModelClientServer : IAsyncLifetime
{
    public RunningServer Server { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Task installed = NodeClients.EnsureInstalledAsync();
        Server = await RunningServer.StartAsync([]);
        await installed;
    }

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// The demo model's calculator through real clients' own tool loops (tests/Clients/demo-calculator.mjs): the OpenAI Node
/// SDK's runTools and the Vercel AI SDK's multi-step generateText over chat completions and the Responses API.
/// </summary>
public sealed class DemoModelClientTests(DemoModelClientServer fixture) : IClassFixture<DemoModelClientServer>
{
    [Fact]
    public async Task Clients_tool_loops_get_the_demo_models_calculator_calls_and_its_answers()
    {
        NodeRun run = await NodeClients.RunAsync("demo-calculator", new Uri(fixture.Server.BaseAddress, "/v1").ToString(), "demo");

        Assert.True(run.ExitCode == 0, $"demo-calculator exited with {run.ExitCode}:\n{run.Output}");
        using JsonDocument line = JsonDocument.Parse(run.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.True(line.RootElement.GetProperty("ok").GetBoolean(), run.Output);
        Assert.Equal("89 * 92 = 8188", line.RootElement.GetProperty("openai-responses").GetString());
    }
}
