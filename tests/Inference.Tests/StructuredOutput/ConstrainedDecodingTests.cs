using System.Text.Json;
using System.Text.RegularExpressions;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tests.Engine;
using LlmServer.Inference.Tests.Models;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>
/// Constrained decoding through the engine on the random-weight fixtures, sampled at temperature 1.0: whatever the
/// weights favour, every reply is a document of its schema, and the unconstrained requests sharing the batch
/// generate exactly what they generate alone.
/// </summary>
public sealed class ConstrainedDecodingTests
{
    public static TheoryData<string> Fixtures => ["gpt2-random-2l-64d", "llama3-random-2l-64d", "qwen3-random-2l-64d"];

    [Theory]
    [MemberData(nameof(Fixtures))]
    public async Task Every_reply_at_temperature_one_parses_and_satisfies_its_schema(string fixture)
    {
        await using EngineClient engine = EngineFactory.Start(fixture, kvCacheBytes: 64L << 20);
        ServedModel served = await engine.Ready;
        ReferenceCase reference = ReferenceCase.Load(fixture)[0];
        int[] prompt = reference.PromptIds;
        // As the API sets it when a request names none: the rest of the context (GPT-2's fixture has 128 positions).
        int maxTokens = Math.Min(160, served.MaxModelLen - prompt.Length);
        var replies = new List<Task<(string Schema, long Seed, string Text, FinishReason? Finish)>>();
        // Ten schemas, as the issue asks: every one but the bare integer root, which the grammar tests cover.
        foreach ((string name, string schemaText) in TestSchemas.ByName.Where(s => s.Key != "integer-root"))
        {
            JsonGrammar grammar = JsonGrammar.FromSchema(JsonDocument.Parse(schemaText).RootElement);
            for (long seed = 0; seed < 20; seed++)
            {
                var sampling = new SamplingParameters { Temperature = 1.0, Seed = seed, MaxTokens = maxTokens, Constraint = new GrammarConstraint(grammar) };
                replies.Add(Run(engine, $"{name}-{seed}", prompt, sampling, name, seed));
            }
        }

        // An unconstrained row in the same batches: the reference's greedy continuation, untouched by the masks.
        var free = new List<int>();
        var freeSampling = new SamplingParameters { Temperature = 0, MaxTokens = reference.GreedyIds.Length, IgnoreEos = true };
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission("free", prompt, freeSampling)))
        {
            free.AddRange(generated.Tokens.Select(t => t.TokenId));
        }

        Assert.Equal(reference.GreedyIds, free);

        var failures = new List<string>();
        var lengths = new List<int>();
        foreach (var (name, seed, text, finish) in await Task.WhenAll(replies))
        {
            lengths.Add(text.Length);
            JsonElement schema = TestSchemas.Parse(name);
            try
            {
                using JsonDocument parsed = JsonDocument.Parse(text);
                string? failure = finish == FinishReason.Stop ? SchemaSubsetValidator.Check(parsed.RootElement, schema, schema) : $"finished with {finish}";
                if (failure is not null)
                {
                    failures.Add($"{name} seed {seed}: {failure} in {text}");
                }
            }
            catch (JsonException e)
            {
                failures.Add($"{name} seed {seed}: {e.Message} ({finish}) in {text}");
            }
        }

        Console.WriteLine($"{fixture}: {replies.Count} replies, mean {lengths.Average():F0} chars, max {lengths.Max()}");
        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(5)));
    }

    [Theory]
    [MemberData(nameof(Fixtures))]
    public async Task Required_tool_calls_at_temperature_one_name_an_offered_function_with_arguments_that_satisfy_its_schema(string fixture)
    {
        await using EngineClient engine = EngineFactory.Start(fixture, kvCacheBytes: 64L << 20);
        ServedModel served = await engine.Ready;
        int[] prompt = ReferenceCase.Load(fixture)[0].PromptIds;
        string[] names = ["nested", "enums", "tree", "optional"];
        ToolFunction[] functions = [.. names.Select(n => new ToolFunction(n, TestSchemas.Parse(n), Strict: true))];
        JsonGrammar grammar = ToolCallGrammar.Build(functions, ToolCallSyntax.Hermes, parallel: true);
        int maxTokens = Math.Min(160, served.MaxModelLen - prompt.Length);
        var replies = Enumerable.Range(0, 40).Select(seed => Run(engine, $"tools-{seed}", prompt,
            new SamplingParameters { Temperature = 1.0, Seed = seed, MaxTokens = maxTokens, Constraint = new GrammarConstraint(grammar) }, "tools", seed)).ToList();

        int calls = 0;
        foreach (var (_, seed, text, finish) in await Task.WhenAll(replies))
        {
            Assert.True(finish == FinishReason.Stop, $"seed {seed} finished with {finish}: {text}");
            // <tool_call>\n{...}\n</tool_call>, one or more separated by a newline. A JSON string holds no raw newline, so
            // "\n</tool_call>" can only close a call.
            MatchCollection matches = Regex.Matches(text, "<tool_call>\n(.*?)\n</tool_call>", RegexOptions.Singleline);
            Assert.Equal(text, string.Join("\n", matches.Select(m => m.Value)));
            foreach (Match match in matches)
            {
                using JsonDocument call = JsonDocument.Parse(match.Groups[1].Value);
                string name = call.RootElement.GetProperty("name").GetString()!;
                Assert.Contains(name, names);
                JsonElement schema = TestSchemas.Parse(name);
                Assert.Null(SchemaSubsetValidator.Check(call.RootElement.GetProperty("arguments"), schema, schema));
                calls++;
            }
        }

        Assert.True(calls >= 40);
    }

    private static async Task<(string, long, string, FinishReason?)> Run(EngineClient engine, string id, int[] prompt, SamplingParameters sampling, string name, long seed)
    {
        string text = "";
        FinishReason? finish = null;
        await foreach (GenerationEvent generated in engine.GenerateAsync(new EngineSubmission(id, prompt, sampling)))
        {
            text += generated.TextDelta;
            finish = generated.FinishReason ?? finish;
            if (generated.ErrorMessage is { } error)
            {
                text += $" (error: {error})";
            }
        }

        return (name, seed, text, finish);
    }
}
