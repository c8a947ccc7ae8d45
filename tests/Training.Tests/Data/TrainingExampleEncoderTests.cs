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
