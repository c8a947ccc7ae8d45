using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Host;
using LlmServer.Training.DemoCorpus;

namespace LlmServer.Tests;

/// <summary>
/// The demo model committed under models/demo, as a newcomer meets it: served when no --model is
/// given, answering the README's question, and as accurate on the held-out questions as
/// docs/demo-model.md says.
/// </summary>
public sealed class DemoModelTests : IDisposable
{
    private readonly string _scratch = Directory.CreateTempSubdirectory("demo-model-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    private static string DemoModel => BundledDemoModel.Find() ?? throw new InvalidOperationException("models/demo is missing from the repository");

    [Fact]
    public async Task Serve_without_a_model_serves_the_demo_model_which_adds_correctly()
    {
        await using RunningServer server = await RunningServer.StartAsync([]);

        JsonNode models = (await server.Http.GetFromJsonAsync<JsonNode>("/v1/models"))!;
        Assert.Equal("demo", (string?)models["data"]![0]!["id"]);
        HttpResponseMessage response = await server.Http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = "demo",
            messages = new[] { new { role = "user", content = "What is 17 + 25?" } },
            temperature = 0,
        });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        JsonNode choice = JsonNode.Parse(body)!["choices"]![0]!;
        Assert.Equal("17 + 25 = 42", (string?)choice["message"]!["content"]);
        Assert.Equal("stop", (string?)choice["finish_reason"]);
    }

    [Fact]
    public async Task The_demo_model_is_as_accurate_on_held_out_questions_as_its_documentation_says()
    {
        string heldOut = Path.Combine(_scratch, "heldout.jsonl");
        File.WriteAllLines(heldOut, DemoCorpusGenerator.HeldOut(new DemoCorpusOptions()).Select(e => DemoCorpusGenerator.ToJsonLine(e, withFamily: true)));
        string result = Path.Combine(_scratch, "eval.json");

        var (exitCode, output) = await LlmServerProcess.RunAsync(TimeSpan.FromMinutes(5), "eval", "--model", DemoModel, "--data", heldOut, "--json", result);

        Assert.True(exitCode == 0, output);
        JsonNode measured = JsonNode.Parse(File.ReadAllText(result))!;
        JsonNode documented = JsonNode.Parse(File.ReadAllText(Path.Combine(DemoModel, "..", "..", "docs", "demo-model-eval.json")))!;
        Assert.Equal((int)documented["total"]!, (int)measured["total"]!);
        // Greedy decoding is deterministic; batching may still flip a near-tie, hence a small margin.
        Assert.True((double)measured["accuracy"]! >= 0.9, output);
        foreach ((string family, JsonNode? figures) in documented["families"]!.AsObject())
        {
            int expected = (int)figures!["correct"]!;
            int actual = (int)measured["families"]![family]!["correct"]!;
            Assert.True(Math.Abs(actual - expected) <= 2, $"{family}: {actual} correct, documented {expected}\n{output}");
        }
    }

    [Fact]
    public async Task Offered_the_calculator_the_demo_model_calls_it_for_arithmetic_and_answers_with_its_result()
    {
        await using RunningServer server = await RunningServer.StartAsync([]);
        JsonNode tool = JsonNode.Parse(DemoCalculator.ToolJson)!;
        var messages = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "What is 17 + 25?" });

        JsonNode call = await ChatAsync(server, messages, tool);
        Assert.Equal("tool_calls", (string?)call["finish_reason"]);
        JsonNode toolCall = call["message"]!["tool_calls"]![0]!;
        Assert.Equal(DemoCalculator.Name, (string?)toolCall["function"]!["name"]);
        string expression = (string)JsonNode.Parse((string)toolCall["function"]!["arguments"]!)!["expression"]!;
        Assert.Equal("17 + 25", expression);

        messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = null, ["tool_calls"] = new JsonArray(toolCall.DeepClone()) });
        messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = (string?)toolCall["id"], ["content"] = DemoCalculator.Evaluate(expression) });
        JsonNode answer = await ChatAsync(server, messages, tool);
        Assert.Equal("stop", (string?)answer["finish_reason"]);
        Assert.Equal("17 + 25 = 42", (string?)answer["message"]!["content"]);

        // A question that needs no arithmetic is answered directly, the tool still offered.
        JsonNode fact = await ChatAsync(server, new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "What is the capital of Kenya?" }), tool);
        Assert.Equal("stop", (string?)fact["finish_reason"]);
        Assert.Equal("The capital of Kenya is Nairobi.", (string?)fact["message"]!["content"]);
    }

    [Fact]
    public async Task With_the_calculator_the_demo_model_is_as_accurate_on_held_out_questions_as_its_documentation_says()
    {
        string heldOut = Path.Combine(_scratch, "heldout.jsonl");
        File.WriteAllLines(heldOut, DemoCorpusGenerator.HeldOut(new DemoCorpusOptions()).Select(e => DemoCorpusGenerator.ToJsonLine(e, withFamily: true)));
        string result = Path.Combine(_scratch, "eval-tools.json");

        var (exitCode, output) = await LlmServerProcess.RunAsync(TimeSpan.FromMinutes(8), "eval", "--model", DemoModel, "--data", heldOut, "--tools", "calculator", "--json", result);

        Assert.True(exitCode == 0, output);
        JsonNode measured = JsonNode.Parse(File.ReadAllText(result))!;
        JsonNode documented = JsonNode.Parse(File.ReadAllText(Path.Combine(DemoModel, "..", "..", "docs", "demo-model-eval-tools.json")))!;
        Assert.Equal((int)documented["total"]!, (int)measured["total"]!);
        foreach ((string family, JsonNode? figures) in documented["families"]!.AsObject())
        {
            foreach (string figure in new[] { "correct", "answered_with_a_call" })
            {
                int expected = (int)figures![figure]!;
                int actual = (int)measured["families"]![family]![figure]!;
                Assert.True(Math.Abs(actual - expected) <= 2, $"{family}: {figure} {actual}, documented {expected}\n{output}");
            }
        }
        // Every call the model made named the calculator with an expression it could evaluate.
        JsonNode arithmetic = measured["families"]!["arithmetic"]!;
        Assert.Equal((int)arithmetic["calls"]!, (int)arithmetic["calls_the_calculator_ran"]!);
    }

    private static async Task<JsonNode> ChatAsync(RunningServer server, JsonArray messages, JsonNode tool)
    {
        HttpResponseMessage response = await server.Http.PostAsJsonAsync("/v1/chat/completions", new JsonObject
        {
            ["model"] = "demo",
            ["messages"] = messages.DeepClone(),
            ["tools"] = new JsonArray(tool.DeepClone()),
            ["temperature"] = 0,
        });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!["choices"]![0]!;
    }
}
