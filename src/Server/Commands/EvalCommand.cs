using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.ChatTemplates;
using LlmServer.Host;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Commands;

/// <summary>
/// <c>llmserver eval --model DIR --data FILE</c>: exact-match accuracy of greedy chat replies on a
/// held-out set, per task family, with the serving engine itself (chat template, stop rules and
/// all), so the figure is what a client of the server would see.
/// </summary>
public static class EvalCommand
{
    public const string Help = """
        Usage: llmserver eval --model DIR --data FILE [--max-tokens N (64)] [--json FILE] [--show-failures N (3)] [--threads N]

        FILE is chat JSONL whose lines end with the expected assistant reply and may carry a "family"
        (demo-corpus's heldout.jsonl). Every conversation but its last reply goes to the model with
        temperature 0; the reply counts when it equals the expected one (surrounding whitespace aside).

        """ + PerplexityEvaluation.Help;

    private sealed record Case(string Family, IReadOnlyList<ChatMessage> Prompt, string Expected);

    private sealed record Outcome(Case Case, string Reply)
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
            var arguments = CommandArguments.Parse(args, ["--model", "--data", "--max-tokens", "--json", "--show-failures", "--threads"], []);
            string model = Path.GetFullPath(arguments.Required("--model"));
            List<Case> cases = ReadCases(arguments.Required("--data"));
            int maxTokens = arguments.Int("--max-tokens", 64);
            IReadOnlyList<Outcome> outcomes = await GenerateAsync(model, cases, maxTokens, arguments.Int("--threads", 0));
            Report(outcomes, arguments.Int("--show-failures", 3), arguments.String("--json"), model);
            return 0;
        }
        catch (Exception e) when (e is CommandLineException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    private static async Task<IReadOnlyList<Outcome>> GenerateAsync(string modelDirectory, IReadOnlyList<Case> cases, int maxTokens, int threads)
    {
        await using var engine = new EngineClient(new EngineOptions
        {
            ModelDirectory = modelDirectory,
            ServedModelName = "eval",
            KvCacheMemoryBytes = 256L << 20,
            CpuThreads = threads,
        });
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

    private static void Report(IReadOnlyList<Outcome> outcomes, int showFailures, string? jsonPath, string model)
    {
        var families = outcomes.GroupBy(o => o.Case.Family).OrderBy(g => g.Key, StringComparer.Ordinal).ToList();
        Console.WriteLine($"{"family",-18} {"correct",8} {"total",6} {"accuracy",9}");
        foreach (var family in families)
        {
            int correct = family.Count(o => o.Correct);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{family.Key,-18} {correct,8} {family.Count(),6} {(double)correct / family.Count(),9:P1}"));
        }
        int allCorrect = outcomes.Count(o => o.Correct);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{"overall",-18} {allCorrect,8} {outcomes.Count,6} {(double)allCorrect / outcomes.Count,9:P1}"));
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
                ["families"] = new JsonObject(families.Select(f => KeyValuePair.Create(f.Key, (JsonNode?)new JsonObject
                {
                    ["total"] = f.Count(),
                    ["correct"] = f.Count(o => o.Correct),
                    ["accuracy"] = (double)f.Count(o => o.Correct) / f.Count(),
                }))),
            };
            File.WriteAllText(jsonPath, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
    }

    /// <summary>Each line: the conversation up to its last message, which must be the assistant's expected reply.</summary>
    private static List<Case> ReadCases(string path)
    {
        if (!File.Exists(path))
        {
            throw new CommandLineException($"--data: no file {path}");
        }
        var cases = new List<Case>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            try
            {
                JsonNode root = JsonNode.Parse(line) ?? throw new InvalidDataException("null");
                var messages = root["messages"]!.AsArray()
                    .Select(m => new ChatMessage((string)m!["role"]!, (string)m["content"]!))
                    .ToList();
                if (messages.Count < 2 || messages[^1].Role != "assistant")
                {
                    throw new InvalidDataException("the last message must be the expected assistant reply");
                }
                cases.Add(new Case((string?)root["family"] ?? "all", messages[..^1], messages[^1].Content));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException or InvalidDataException)
            {
                throw new InvalidDataException($"{path}: line {lineNumber}: not a chat example with an expected reply ({e.Message})", e);
            }
        }
        return cases.Count > 0 ? cases : throw new InvalidDataException($"{path}: no examples");
    }
}
