using System.Text.Json;
using System.Text.RegularExpressions;
using LlmServer.ChatTemplates;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Data;
using LlmServer.Training.DemoCorpus;

namespace LlmServer.Training.Tests.DemoCorpus;

public sealed class DemoCorpusGeneratorTests : IDisposable
{
    private static readonly DemoCorpusOptions Small = new() { TrainingExamples = 5_000, ValidationExamples = 200, HeldOutPerFamily = 40, Seed = 7 };

    private readonly string _directory = Directory.CreateTempSubdirectory("demo-corpus-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void The_same_seed_writes_the_same_files_and_another_seed_other_ones()
    {
        DemoCorpusGenerator.Write(Path.Combine(_directory, "a"), Small);
        DemoCorpusGenerator.Write(Path.Combine(_directory, "b"), Small);
        DemoCorpusGenerator.Write(Path.Combine(_directory, "c"), Small with { Seed = 8 });
        foreach (string file in new[] { DemoCorpusGenerator.TrainingFileName, DemoCorpusGenerator.ValidationFileName, DemoCorpusGenerator.HeldOutFileName })
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(_directory, "a", file)), File.ReadAllBytes(Path.Combine(_directory, "b", file)));
            Assert.NotEqual(File.ReadAllBytes(Path.Combine(_directory, "a", file)), File.ReadAllBytes(Path.Combine(_directory, "c", file)));
        }
        Assert.Equal(Small.TrainingExamples, File.ReadAllLines(Path.Combine(_directory, "a", DemoCorpusGenerator.TrainingFileName)).Length);
    }

    [Fact]
    public void No_held_out_or_validation_question_and_no_held_out_sum_is_ever_trained_on()
    {
        IReadOnlyList<DemoExample> training = DemoCorpusGenerator.Training(Small);
        IReadOnlyList<DemoExample> heldOut = DemoCorpusGenerator.HeldOut(Small);
        IReadOnlyList<DemoExample> validation = DemoCorpusGenerator.Validation(Small, heldOut);
        var trainedPrompts = training.Select(e => e.Prompt).ToHashSet();
        var trainedKeys = training.Select(e => e.Family + "/" + e.PartitionKey).ToHashSet();

        Assert.DoesNotContain(heldOut, e => trainedPrompts.Contains(e.Prompt));
        Assert.DoesNotContain(validation, e => trainedPrompts.Contains(e.Prompt));
        Assert.DoesNotContain(validation, e => heldOut.Any(h => h.Prompt == e.Prompt));
        // Sums are split by operands: a held-out sum is never trained on under any phrasing.
        Assert.DoesNotContain(heldOut, e => trainedKeys.Contains(e.Family + "/" + e.PartitionKey));
        Assert.Contains(heldOut, e => e.PartitionKey.StartsWith("sum ", StringComparison.Ordinal));
    }

    [Fact]
    public void Every_family_has_distinct_held_out_questions()
    {
        IReadOnlyList<DemoExample> heldOut = DemoCorpusGenerator.HeldOut(Small);
        foreach (DemoTaskFamily family in DemoCorpusGenerator.Families)
        {
            var questions = heldOut.Where(e => e.Family == family.Name).Select(e => e.Prompt).ToList();
            Assert.InRange(questions.Count, 20, Small.HeldOutPerFamily);
            Assert.Equal(questions.Count, questions.Distinct().Count());
        }
    }

    [Fact]
    public void Arithmetic_conversion_and_counting_replies_are_right()
    {
        var arithmetic = new Regex(@"^(\d+) ([+\-*]) (\d+) = (\d+)$");
        var conversion = new Regex(@"^(\d+) (\w+) is (\d+) (\w+)\.$");
        var factors = new Dictionary<string, long> { ["millimeter"] = 1, ["centimeter"] = 10, ["meter"] = 1000, ["kilometer"] = 1_000_000, ["gram"] = 1, ["kilogram"] = 1000, ["milliliter"] = 1, ["liter"] = 1000 };
        long Unit(string name) => factors[name.TrimEnd('s')];
        int checkedReplies = 0;
        foreach (DemoExample example in DemoCorpusGenerator.Training(Small))
        {
            if (example.Family == "arithmetic")
            {
                Match m = arithmetic.Match(example.Reply);
                Assert.True(m.Success, example.Reply);
                long a = long.Parse(m.Groups[1].Value), b = long.Parse(m.Groups[3].Value), c = long.Parse(m.Groups[4].Value);
                Assert.Equal(m.Groups[2].Value switch { "+" => a + b, "-" => a - b, _ => a * b }, c);
                Assert.Contains(m.Groups[1].Value, example.Prompt);
                checkedReplies++;
            }
            else if (example.Family == "unit_conversion")
            {
                Match m = conversion.Match(example.Reply);
                Assert.True(m.Success, example.Reply);
                Assert.Equal(long.Parse(m.Groups[1].Value) * Unit(m.Groups[2].Value), long.Parse(m.Groups[3].Value) * Unit(m.Groups[4].Value));
                checkedReplies++;
            }
            else if (example.Prompt.StartsWith("Count from", StringComparison.Ordinal))
            {
                int[] numbers = example.Reply.Split(", ").Select(int.Parse).ToArray();
                Assert.Equal(Enumerable.Range(numbers[0], numbers.Length), numbers);
                Assert.EndsWith($" to {numbers[^1]}.", example.Prompt);
                checkedReplies++;
            }
        }
        Assert.True(checkedReplies > 2_000, $"only {checkedReplies} replies checked");
    }

    [Fact]
    public void The_chat_template_trains_the_reply_and_end_of_text_after_the_prompt_serving_sends()
    {
        var tokenizer = Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);
        var formatter = ChatPromptFormatter.FromTemplate(DemoCorpusGenerator.ChatTemplate, tokenizer.EndOfTextToken);
        var example = new DemoExample("arithmetic", "sum 17 25", "What is 17 + 25?", "17 + 25 = 42");
        string line = DemoCorpusGenerator.ToJsonLine(example, withFamily: false);

        TrainingExample encoded = new TrainingExampleEncoder(tokenizer, formatter).Encode(line);

        string prompt = formatter.Format([new ChatMessage("user", "What is 17 + 25?")]);
        Assert.Equal("User: What is 17 + 25?\nAssistant:\n", prompt);
        int[] trained = encoded.TokenIds.Where((_, i) => encoded.Trained[i]).ToArray();
        Assert.Equal("17 + 25 = 42<|endoftext|>\n", tokenizer.Decode(trained));
        Assert.Contains(tokenizer.EndOfTextId, trained);
        Assert.Equal(tokenizer.Encode(prompt), encoded.TokenIds.Take(encoded.TokenIds.Length - trained.Length));
        // Pretraining tokenizes the rendered conversation whole; it must cut the same tokens.
        Assert.Equal(encoded.TokenIds, tokenizer.Encode(formatter.Format([new ChatMessage("user", example.Prompt), new ChatMessage("assistant", example.Reply)], addGenerationPrompt: false)));
        using JsonDocument json = JsonDocument.Parse(line);
        Assert.False(json.RootElement.TryGetProperty("family", out _));
    }

    // The template before tools were added, which models/demo was trained on.
    private const string TemplateWithoutTools =
        "{% for message in messages %}" +
        "{% if message['role'] == 'user' %}{{ 'User: ' + message['content'] + '\n' }}" +
        "{% elif message['role'] == 'assistant' %}{{ 'Assistant:\n' + message['content'] + eos_token + '\n' }}" +
        "{% else %}{{ message['content'] + '\n' }}{% endif %}" +
        "{% endfor %}" +
        "{% if add_generation_prompt %}{{ 'Assistant:\n' }}{% endif %}";

    [Fact]
    public void A_conversation_without_tools_renders_as_it_did_before_the_template_took_tools()
    {
        var withTools = ChatPromptFormatter.FromTemplate(DemoCorpusGenerator.ChatTemplate, "<|endoftext|>");
        var before = ChatPromptFormatter.FromTemplate(TemplateWithoutTools, "<|endoftext|>");
        ChatMessage[] conversation =
            [new("system", "Be brief."), new("user", "What is 7 * 8?"), new("assistant", "7 * 8 = 56"), new("user", "Bye")];

        for (int count = 1; count <= conversation.Length; count++)
        {
            foreach (bool generationPrompt in new[] { true, false })
            {
                Assert.Equal(before.Format(conversation[..count], generationPrompt), withTools.Format(conversation[..count], generationPrompt));
            }
        }
        Assert.True(withTools.TakesTools);
        Assert.Contains(ToolCallSyntax.Hermes.CallPrefix.TrimEnd(), DemoCorpusGenerator.ChatTemplate);
    }

    [Fact]
    public void A_tool_share_offers_the_calculator_in_that_share_of_conversations_and_asks_half_their_arithmetic_beyond_reach()
    {
        IReadOnlyList<DemoExample> plain = DemoCorpusGenerator.Training(Small);
        IReadOnlyList<DemoExample> offered = DemoCorpusGenerator.Training(Small with { ToolShare = 0.5 });

        Assert.Equal(plain.Count, offered.Count);
        var swapped = new List<DemoExample>();
        for (int i = 0; i < plain.Count; i++)
        {
            if (offered[i].PartitionKey.StartsWith("large ", StringComparison.Ordinal))
            {
                Assert.True(offered[i].OffersTool && plain[i].Family == "arithmetic", offered[i].ToString());
                swapped.Add(offered[i]);
            }
            else
            {
                Assert.Equal(plain[i], offered[i] with { OffersTool = false });
            }
        }
        Assert.DoesNotContain(plain, e => e.OffersTool);
        int offeredArithmetic = offered.Count(e => e.OffersTool && e.Family == "arithmetic");
        Assert.InRange(swapped.Count / (double)offeredArithmetic, 0.4, 0.6);
        // Beyond reach: three-digit sums and differences, products past the times table; the reply is still right.
        Assert.All(swapped, e => Assert.Equal(e.Reply, $"{e.ToolExpression} = {DemoCalculator.Evaluate(e.ToolExpression!)}"));
        Assert.Contains(swapped, e => e.ToolExpression!.Contains('*', StringComparison.Ordinal));
        double share = offered.Count(e => e.OffersTool) / (double)offered.Count;
        Assert.InRange(share, 0.45, 0.55);
        Assert.All(offered.Where(e => e.Family == "arithmetic"), e => Assert.NotNull(e.ToolExpression));
        Assert.All(offered.Where(e => e.Family != "arithmetic"), e => Assert.Null(e.ToolExpression));
    }

    [Fact]
    public void An_arithmetic_question_offered_the_tool_is_answered_by_a_Hermes_call_then_the_result_then_the_reply()
    {
        var tokenizer = Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);
        var formatter = ChatPromptFormatter.FromTemplate(DemoCorpusGenerator.ChatTemplate, tokenizer.EndOfTextToken);
        var example = new DemoExample("arithmetic", "difference 71 42", "Subtract 42 from 71.", "71 - 42 = 29") { ToolExpression = "71 - 42", OffersTool = true };
        string line = DemoCorpusGenerator.ToJsonLine(example, withFamily: false);

        Assert.True(TrainingFileValidator.Validate(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(line))).IsValid);
        TrainingExample encoded = new TrainingExampleEncoder(tokenizer, formatter).Encode(line);

        Assert.Equal(
            "Tools: calculator\nUser: Subtract 42 from 71.\nAssistant:\n" +
            "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"71 - 42\"}}\n</tool_call><|endoftext|>\n" +
            "Result: 29\nAssistant:\n71 - 42 = 29<|endoftext|>\n",
            tokenizer.Decode(encoded.TokenIds));
        string trained = tokenizer.Decode(encoded.TokenIds.Where((_, i) => encoded.Trained[i]).ToArray());
        Assert.Equal("<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"71 - 42\"}}\n</tool_call><|endoftext|>\n71 - 42 = 29<|endoftext|>\n", trained);

        // A question of another family offered the tool is answered directly, with the tool still named.
        var fact = new DemoExample("facts", "capital Kenya", "What is the capital of Kenya?", "The capital of Kenya is Nairobi.") { OffersTool = true };
        Assert.StartsWith("Tools: calculator\nUser: What is the capital of Kenya?\nAssistant:\nThe capital",
            tokenizer.Decode(new TrainingExampleEncoder(tokenizer, formatter).Encode(DemoCorpusGenerator.ToJsonLine(fact, withFamily: false)).TokenIds));
    }
}
