using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.ChatTemplates;
using LlmServer.Host;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.DemoCorpus;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver eval --model DIR --data FILE</c>: exact-match accuracy of greedy chat replies on a
/// held-out set, per task family, with the serving engine itself (chat template, stop rules and
/// all), so the figure is what a client of the server would see.
/// </summary>
public static class EvalCommand
{
    public const string Help = """
        Usage: llmserver eval --model DIR --data FILE [--tools calculator] [--max-tokens N (64; with --tools the rest of the context)] [--json FILE] [--show-failures N (3)] [--threads N] [--dtype float32|bfloat16] [--quantization none|int8] [--replies FILE]

        FILE is chat JSONL whose lines end with the expected assistant reply and may carry a "family"
        (demo-corpus's heldout.jsonl). Every conversation but its last reply goes to the model with
        temperature 0; the reply counts when it equals the expected one (surrounding whitespace aside).

        --tools calculator offers the demo model's calculator tool with every question, through the chat endpoint of a
        server started in this process (tool_choice auto). The calls the model makes are run and answered with tool
        messages (at most 3 rounds); the reply after them is the one judged. The report counts the questions answered
        with a call. Replies there are limited only by the context unless --max-tokens is given: a call alone is about
        70 of the demo tokenizer's tokens, and one cut short by a limit is closed early with whatever fits.

        --replies FILE writes every question's reply as JSONL (family, question, expected, reply, correct), in the
        data's order, so two runs (two dtypes, two checkpoints) can be compared reply by reply.

        """ + ServingPrecision.Help + ".\n" + PerplexityEvaluation.Help;

    private sealed record Case(string Family, IReadOnlyList<ChatMessage> Prompt, string Expected);

    private sealed record Outcome(Case Case, string Reply, int ToolCalls = 0, int ToolCallsRun = 0)
    {
        public bool Correct => Reply.Trim() == Case.Expected.Trim();
    }

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine(Help);
            return 0;
        }
        if (args.Any(a => a == "--perplexity" || a.StartsWith("--perplexity=", StringComparison.Ordinal)))
        {
            return await PerplexityEvaluation.RunAsync(args);
        }
        try
        {
            var arguments = CommandArguments.Parse(args, ["--model", "--data", "--max-tokens", "--json", "--show-failures", "--threads", "--tools", "--replies", .. ServingPrecision.Flags], []);
            ServingPrecision precision = ServingPrecision.From(arguments);
            string model = Path.GetFullPath(arguments.Required("--model"));
            if (!Directory.Exists(model))
            {
                throw new CommandLineException($"--model: no directory {model}");
            }
            List<Case> cases = ReadCases(arguments.Required("--data"));
            string? tools = arguments.String("--tools");
            int maxTokens = arguments.Int("--max-tokens", 64);
            if (tools is not null && tools != DemoCalculator.Name)
            {
                throw new CommandLineException($"--tools: the only tool eval can run is {DemoCalculator.Name}, got '{tools}'");
            }
            IReadOnlyList<Outcome> outcomes = tools is null
                ? await GenerateAsync(model, cases, maxTokens, arguments.Int("--threads", 0), precision)
                : await GenerateWithCalculatorAsync(model, cases, arguments.Has("--max-tokens") ? maxTokens : null, arguments.Int("--threads", 0), precision);
            Report(outcomes, arguments.Int("--show-failures", 3), arguments.String("--json"), model, withTools: tools is not null);
            if (arguments.String("--replies") is { } repliesPath)
            {
                WriteReplies(outcomes, repliesPath);
            }
            return 0;
        }
        catch (Exception e) when (e is CommandLineException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    private static async Task<IReadOnlyList<Outcome>> GenerateAsync(string modelDirectory, IReadOnlyList<Case> cases, int maxTokens, int threads, ServingPrecision precision)
    {
        await using EngineClient engine = OfflineEngine.Start(modelDirectory, threads, precision);
        ServedModel model = await engine.Ready;
        var sampling = new SamplingParameters { Temperature = 0, MaxTokens = maxTokens, StopStrings = model.ChatFormatter.ImplicitStopStrings };
        // All at once: the engine batches them as it would concurrent clients.
        Task<Outcome>[] replies = cases.Select(async (c, i) =>
        {
            IReadOnlyList<int> prompt = model.Tokenizer.Encode(model.ChatFormatter.Format(c.Prompt, addGenerationPrompt: true));
            var text = new System.Text.StringBuilder();
            await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission($"eval-{i}", prompt, sampling)))
            {
                text.Append(generated.TextDelta);
                if (generated.ErrorMessage is { } error)
                {
                    throw new InvalidDataException($"case {i + 1}: the engine failed: {error}");
                }
            }
            return new Outcome(c, text.ToString());
        }).ToArray();
        return await Task.WhenAll(replies);
    }

    private static async Task<IReadOnlyList<Outcome>> GenerateWithCalculatorAsync(string modelDirectory, IReadOnlyList<Case> cases, int? maxTokens, int threads, ServingPrecision precision)
    {
        IReadOnlyList<ToolUseEvaluation.Conversation> conversations =
            await ToolUseEvaluation.RunAsync(modelDirectory, cases.Select(c => c.Prompt).ToList(), maxTokens, threads, precision);
        return cases.Zip(conversations, (c, conversation) => new Outcome(c, conversation.Reply, conversation.Calls, conversation.CallsRun)).ToList();
    }

    private static void Report(IReadOnlyList<Outcome> outcomes, int showFailures, string? jsonPath, string model, bool withTools)
    {
        var families = outcomes.GroupBy(o => o.Case.Family).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        string calledHeader = withTools ? $" {"called",7}" : "";
        Console.WriteLine($"{"family",-18} {"correct",8} {"total",6} {"accuracy",9}{calledHeader}");
        foreach (var family in families)
        {
            int correct = family.Count(o => o.Correct);
            string called = withTools ? $" {family.Count(o => o.ToolCalls > 0),7}" : "";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{family.Key,-18} {correct,8} {family.Count(),6} {(double)correct / family.Count(),9:P1}{called}"));
        }
        int allCorrect = outcomes.Count(o => o.Correct);
        string allCalled = withTools ? $" {outcomes.Count(o => o.ToolCalls > 0),7}" : "";
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"overall",-18} {allCorrect,8} {outcomes.Count,6} {(double)allCorrect / outcomes.Count,9:P1}{allCalled}"));
        foreach (var family in families)
        {
            foreach (Outcome failure in family.Where(o => !o.Correct).Take(showFailures))
            {
                Console.WriteLine($"  {family.Key}: {failure.Case.Prompt[^1].Content} -> {JsonSerializer.Serialize(failure.Reply)} (expected {JsonSerializer.Serialize(failure.Case.Expected)})");
            }
        }
        if (jsonPath is not null)
        {
            var json = new JsonObject
            {
                ["model"] = model,
                ["total"] = outcomes.Count,
                ["correct"] = allCorrect,
                ["accuracy"] = (double)allCorrect / outcomes.Count,
                ["families"] = new JsonObject(families.Select(f => KeyValuePair.Create(f.Key, (JsonNode?)FamilyJson(f.ToList(), withTools)))),
            };
            if (withTools)
            {
                json["tools"] = DemoCalculator.Name;
                json["answered_with_a_call"] = outcomes.Count(o => o.ToolCalls > 0);
            }
            File.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
    }

    private static void WriteReplies(IReadOnlyList<Outcome> outcomes, string path)
    {
        using var writer = new StreamWriter(path);
        foreach (Outcome outcome in outcomes)
        {
            writer.WriteLine(new JsonObject
            {
                ["family"] = outcome.Case.Family,
                ["question"] = outcome.Case.Prompt[^1].Content,
                ["expected"] = outcome.Case.Expected,
                ["reply"] = outcome.Reply,
                ["correct"] = outcome.Correct,
            }.ToJsonString());
        }
    }

    private static JsonObject FamilyJson(IReadOnlyList<Outcome> family, bool withTools)
    {
        var json = new JsonObject
        {
            ["total"] = family.Count,
            ["correct"] = family.Count(o => o.Correct),
            ["accuracy"] = (double)family.Count(o => o.Correct) / family.Count,
        };
        if (withTools)
        {
            json["answered_with_a_call"] = family.Count(o => o.ToolCalls > 0);
            json["calls"] = family.Sum(o => o.ToolCalls);
            json["calls_the_calculator_ran"] = family.Sum(o => o.ToolCallsRun);
        }
        return json;
    }

    /// <summary>Each line: the conversation up to its last message, which must be the assistant's expected reply.</summary>
    private static List<Case> ReadCases(string path)
    {
        if (!File.Exists(path))
        {
            throw new CommandLineException($"--data: no file {path}");
        }
        List<Case> cases = JsonLinesFile.Read(path, "not a chat example with an expected reply", (root, _) =>
        {
            var messages = root["messages"]!.AsArray()
                .Select(m => new ChatMessage((string)m!["role"]!, (string)m["content"]!))
                .ToList();
            if (messages.Count < 2 || messages[^1].Role != "assistant")
            {
                throw new InvalidDataException("the last message must be the expected assistant reply");
            }
            return new Case((string?)root["family"] ?? "all", messages[..^1], messages[^1].Content);
        });
        return cases.Count > 0 ? cases : throw new InvalidDataException($"{path}: no examples");
    }
}
