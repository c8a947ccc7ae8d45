using System.Text.Json.Nodes;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Inference.Tests.Tokenization;

/// <summary>The checkpoint's own chat template wins; without one the documented ChatML default applies.</summary>
public sealed class ChatPromptFormatterTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("chat-template-").FullName;
    private static readonly ChatMessage[] Conversation = [new("system", "Be brief."), new("user", "Hi!")];

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    private Gpt2Tokenizer Tokenizer() => Gpt2Tokenizer.Load(TestFixtures.TokenizerDirectory);

    [Fact]
    public void Without_a_chat_template_the_chatml_default_is_used_with_its_end_of_turn_as_stop()
    {
        ChatPromptFormatter formatter = ChatPromptFormatter.Load(TestFixtures.ModelDirectory("gpt2-random-2l-64d"), Tokenizer());

        Assert.True(formatter.IsDefaultTemplate);
        Assert.Equal(["<|im_end|>"], formatter.ImplicitStopStrings);
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n",
            formatter.Format(Conversation));
        Assert.Equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n",
            formatter.Format(Conversation, addGenerationPrompt: false));
    }

    [Fact]
    public void The_checkpoints_own_template_is_rendered_with_its_special_tokens()
    {
        const string template =
            "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'Q: ' + message['content'] + '\\n' }}" +
            "{% elif message['role'] == 'system' %}{{ message['content'] + '\\n' }}{% endif %}{% endfor %}" +
            "{% if add_generation_prompt %}{{ 'A:' }}{% endif %}{{ eos_token if false else '' }}";
        File.WriteAllText(Path.Combine(_directory, "tokenizer_config.json"),
            new JsonObject { ["chat_template"] = template, ["eos_token"] = "<|endoftext|>" }.ToJsonString());

        ChatPromptFormatter formatter = ChatPromptFormatter.Load(_directory, Tokenizer());

        Assert.False(formatter.IsDefaultTemplate);
        Assert.Empty(formatter.ImplicitStopStrings);
        Assert.Equal("Be brief.\nQ: Hi!\nA:", formatter.Format(Conversation));
    }

    [Fact]
    public void A_named_default_template_in_a_list_is_chosen()
    {
        File.WriteAllText(Path.Combine(_directory, "tokenizer_config.json"), new JsonObject
        {
            ["chat_template"] = new JsonArray(
                new JsonObject { ["name"] = "tool_use", ["template"] = "TOOLS" },
                new JsonObject { ["name"] = "default", ["template"] = "{{ bos_token }}{{ messages[-1]['content'] }}" }),
        }.ToJsonString());

        Assert.Equal("<|endoftext|>Hi!", ChatPromptFormatter.Load(_directory, Tokenizer()).Format(Conversation));
    }

    [Fact]
    public void A_template_that_rejects_the_conversation_raises_a_template_error()
    {
        File.WriteAllText(Path.Combine(_directory, "tokenizer_config.json"), new JsonObject
        {
            ["chat_template"] = "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}",
        }.ToJsonString());

        var error = Assert.Throws<ChatTemplateException>(() => ChatPromptFormatter.Load(_directory, Tokenizer()).Format(Conversation));
        Assert.Contains("System role not supported", error.Message);
    }

    [Fact]
    public void A_template_that_does_not_parse_fails_at_load_naming_the_file()
    {
        string config = Path.Combine(_directory, "tokenizer_config.json");
        File.WriteAllText(config, new JsonObject { ["chat_template"] = "{% for m in messages %}{{ m.content }}" }.ToJsonString());

        var error = Assert.Throws<InvalidDataException>(() => ChatPromptFormatter.Load(_directory, Tokenizer()));
        Assert.StartsWith(config, error.Message);
    }
}
