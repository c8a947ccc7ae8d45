using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;
using LlmServer.Training.Data;

namespace LlmServer.Training.Tests.Data;

/// <summary>The loss must fall on exactly the tokens the model is to produce, and nowhere else.</summary>
public sealed class TrainingExampleEncoderTests
{
    private static readonly Gpt2Tokenizer Tokenizer = AnimalSoundTask.Tokenizer;
    private readonly TrainingExampleEncoder _encoder = new(Tokenizer, AnimalSoundTask.Formatter);

    [Fact]
    public void A_chat_example_trains_the_assistant_turn_and_its_end_marker_only()
    {
        TrainingExample example = _encoder.Encode(
            """{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hello?"},{"role":"assistant","content":"Hi there."}]}""");

        Assert.Equal(
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHello?<|im_end|>\n<|im_start|>assistant\nHi there.<|im_end|>\n",
            Tokenizer.Decode(example.TokenIds));
        Assert.Equal(["Hi there.<|im_end|>\n"], TrainedRuns(example));
        Assert.Equal(Tokenizer.Encode("Hi there.<|im_end|>\n").Count, example.TrainedTokenCount);
    }

    [Fact]
    public void Every_assistant_turn_of_a_conversation_is_trained_unless_its_weight_is_zero()
    {
        const string conversation =
            """{"messages":[{"role":"user","content":"One?"},{"role":"assistant","content":"Uno."WEIGHT},""" +
            """{"role":"user","content":"Two?"},{"role":"assistant","content":"Dos."}]}""";

        TrainingExample both = _encoder.Encode(conversation.Replace("WEIGHT", ""));
        TrainingExample secondOnly = _encoder.Encode(conversation.Replace("WEIGHT", ",\"weight\":0"));
        TrainingExample explicitOne = _encoder.Encode(conversation.Replace("WEIGHT", ",\"weight\":1"));

        Assert.Equal(["Uno.<|im_end|>\n", "Dos.<|im_end|>\n"], TrainedRuns(both));
        Assert.Equal(["Dos.<|im_end|>\n"], TrainedRuns(secondOnly));
        Assert.Equal(TrainedRuns(both), TrainedRuns(explicitOne));
        // The weight changes what is trained, never what the model reads.
        Assert.Equal(both.TokenIds, secondOnly.TokenIds);
    }

    [Fact]
    public void The_prompt_is_tokenized_as_serving_tokenizes_it()
    {
        var messages = new List<ChatMessage> { new("user", "What is 2+2?"), new("assistant", " Four") };
        TrainingExample example = _encoder.EncodeChat(messages, [false, true]);

        string prompt = AnimalSoundTask.Formatter.Format(messages.Take(1).ToList(), addGenerationPrompt: true);
        int[] promptIds = Tokenizer.Encode(prompt).ToArray();
        Assert.Equal(promptIds, example.TokenIds[..promptIds.Length]);
        Assert.All(example.Trained[..promptIds.Length], Assert.False);
        Assert.All(example.Trained[promptIds.Length..], Assert.True);
    }

    [Fact]
    public void A_template_whose_renders_are_not_prefix_stable_is_refused()
    {
        string directory = Directory.CreateTempSubdirectory("template-").FullName;
        try
        {
            // The message count comes first, so a longer conversation does not extend a shorter one.
            File.WriteAllText(Path.Combine(directory, "tokenizer_config.json"),
                """{"chat_template": "{{ messages|length }}{% for m in messages %}[{{ m['content'] }}]{% endfor %}"}""");
            var encoder = new TrainingExampleEncoder(Tokenizer, ChatPromptFormatter.Load(directory, Tokenizer));

            var error = Assert.Throws<FormatException>(() =>
                encoder.Encode("""{"messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]}"""));
            Assert.Contains("prefix-stably at message 2", error.Message);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void A_prompt_completion_example_trains_the_completion_and_end_of_text()
    {
        TrainingExample example = _encoder.Encode("""{"prompt":"The sky is","completion":" blue"}""");

        int[] prompt = Tokenizer.Encode("The sky is").ToArray();
        int[] completion = Tokenizer.Encode(" blue").ToArray();
        Assert.Equal([.. prompt, .. completion, 50256], example.TokenIds);
        Assert.Equal([.. prompt.Select(_ => false), .. completion.Select(_ => true), true], example.Trained);
        Assert.Equal(completion.Length + 1, example.TrainedTokenCount);
    }

    [Fact]
    public void The_first_token_never_counts_as_trained_because_nothing_predicts_it()
    {
        TrainingExample example = _encoder.EncodePromptCompletion("", "Hello");
        Assert.Equal(Tokenizer.Encode("Hello").Count + 1, example.Length);
        Assert.Equal(example.Length - 1, example.TrainedTokenCount);
    }

    [Theory]
    [InlineData("not json", "not valid JSON")]
    [InlineData("[1,2]", "not a JSON object")]
    [InlineData("""{"text":"x"}""", "neither a chat example")]
    [InlineData("""{"messages":[{"role":"user"}]}""", "message 1: \"content\" is missing")]
    [InlineData("""{"prompt":"x","completion":3}""", "\"completion\" must be a string")]
    public void A_line_that_is_no_example_says_why(string line, string reason)
    {
        var error = Assert.Throws<FormatException>(() => _encoder.Encode(line));
        Assert.Contains(reason, error.Message);
    }

    private const string CalculatorExample =
        """{"messages":[{"role":"user","content":"What is 17 + 25?"},""" +
        """{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"calculator","arguments":"{\"expression\": \"17 + 25\"}"}}]},""" +
        """{"role":"tool","tool_call_id":"call_1","content":"42"},{"role":"assistant","content":"17 + 25 = 42"}],"tools":""" +
        """[{"type":"function","function":{"name":"calculator","parameters":{"type":"object","properties":{"expression":{"type":"string"}}}}}]}""";

    [Fact]
    public void A_tool_calling_example_on_a_template_without_tools_is_rendered_as_serving_renders_it_and_trains_the_call_and_the_reply()
    {
        TrainingExample example = _encoder.Encode(CalculatorExample);

        JsonElement tools = JsonDocument.Parse("""[{"type":"function","function":{"name":"calculator","parameters":{"type":"object","properties":{"expression":{"type":"string"}}}}}]""").RootElement;
        ChatMessage[] conversation =
        [
            new("user", "What is 17 + 25?"),
            new("assistant", "") { ToolCalls = [new ChatToolCall("call_1", "calculator", JsonDocument.Parse("""{"expression": "17 + 25"}""").RootElement)] },
            new("tool", "42") { ToolCallId = "call_1" },
            new("assistant", "17 + 25 = 42"),
        ];
        string served = AnimalSoundTask.Formatter.Format(DefaultToolPrompt.Rewrite(conversation, tools), addGenerationPrompt: false);
        Assert.Equal(served, Tokenizer.Decode(example.TokenIds));
        Assert.Equal(
            ["<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"17 + 25\"}}\n</tool_call><|im_end|>\n", "17 + 25 = 42<|im_end|>\n"],
            TrainedRuns(example));
    }

    [Fact]
    public void A_tool_calling_example_on_a_template_that_takes_tools_passes_them_to_it()
    {
        const string template =
            "{% if tools %}{{ 'Tools: ' + tools[0].function.name + '\n' }}{% endif %}" +
            "{% for m in messages %}{% if m.role == 'assistant' %}{{ 'A: ' + m.content }}" +
            "{% if m.tool_calls %}{% for call in m.tool_calls %}{{ '<tool_call>' + call.function.name + call.function.arguments | tojson + '</tool_call>' }}{% endfor %}{% endif %}" +
            "{{ eos_token + '\n' }}{% else %}{{ m.role + ': ' + m.content + '\n' }}{% endif %}{% endfor %}" +
            "{% if add_generation_prompt %}{{ 'A: ' }}{% endif %}";
        var encoder = new TrainingExampleEncoder(Tokenizer, ChatPromptFormatter.FromTemplate(template, Tokenizer.EndOfTextToken));

        TrainingExample example = encoder.Encode(CalculatorExample);

        Assert.Equal(
            "Tools: calculator\nuser: What is 17 + 25?\nA: <tool_call>calculator{\"expression\": \"17 + 25\"}</tool_call><|endoftext|>\ntool: 42\nA: 17 + 25 = 42<|endoftext|>\n",
            Tokenizer.Decode(example.TokenIds));
        Assert.Equal(["<tool_call>calculator{\"expression\": \"17 + 25\"}</tool_call><|endoftext|>\n", "17 + 25 = 42<|endoftext|>\n"], TrainedRuns(example));
    }

    [Theory]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"{"}}]}]}""", "message 2: tool call 1: \"arguments\" is not valid JSON")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","tool_calls":[{"function":{"name":"f","arguments":"[]"}}]}]}""", "message 2: tool call 1: \"arguments\" must be a JSON object")]
    [InlineData("""{"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A"}],"tools":{}}""", "\"tools\" must be an array")]
    public void A_malformed_tool_call_or_tools_list_is_refused_saying_where(string line, string expected)
    {
        FormatException refused = Assert.Throws<FormatException>(() => _encoder.Encode(line));

        Assert.StartsWith(expected, refused.Message);
    }

    /// <summary>The text of each maximal run of trained tokens.</summary>
    private static List<string> TrainedRuns(TrainingExample example)
    {
        var runs = new List<string>();
        var current = new List<int>();
        for (int i = 0; i <= example.Length; i++)
        {
            if (i < example.Length && example.Trained[i])
            {
                current.Add(example.TokenIds[i]);
            }
            else if (current.Count > 0)
            {
                runs.Add(Tokenizer.Decode(current));
                current.Clear();
            }
        }
        return runs;
    }
}
