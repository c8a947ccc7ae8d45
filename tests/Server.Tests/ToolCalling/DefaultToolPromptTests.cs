using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tests;
using LlmServer.Inference.Tokenization;
using LlmServer.OpenAi.Chat.ToolCalling;

namespace LlmServer.Tests.ToolCalling;

/// <summary>A template without tools gets the tools in its system message and tool history as text it can render.</summary>
public sealed class DefaultToolPromptTests
{
    private static readonly JsonElement Tools = JsonDocument.Parse(
        """[{"type": "function", "function": {"name": "add", "parameters": {"type": "object", "properties": {"a": {"type": "integer"}}}}}]""").RootElement;

    private static readonly IReadOnlyList<ChatMessage> Conversation =
    [
        new("system", "Be brief."),
        new("user", "2+2?"),
        new("assistant", "") { ToolCalls = [new ChatToolCall("c1", "add", JsonDocument.Parse("""{"a": 2, "b": "x"}""").RootElement)] },
        new("tool", "4") { ToolCallId = "c1" },
        new("tool", "5") { ToolCallId = "c2" },
    ];

    [Fact]
    public void Tools_join_the_system_message_and_calls_and_answers_become_text()
    {
        IReadOnlyList<ChatMessage> rewritten = DefaultToolPrompt.Rewrite(Conversation, Tools);

        Assert.Equal(["system", "user", "assistant", "user"], rewritten.Select(m => m.Role));
        Assert.StartsWith("Be brief.\n\n# Tools\n", rewritten[0].Content);
        // Python's json.dumps layout, as Qwen's template writes tools.
        Assert.Contains("<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"add\", \"parameters\": {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"integer\"}}}}}\n</tools>",
            rewritten[0].Content);
        Assert.Equal("<tool_call>\n{\"name\": \"add\", \"arguments\": {\"a\": 2, \"b\": \"x\"}}\n</tool_call>", rewritten[2].Content);
        Assert.Null(rewritten[2].ToolCalls);
        Assert.Equal("<tool_response>\n4\n</tool_response>\n<tool_response>\n5\n</tool_response>", rewritten[3].Content);
    }

    [Fact]
    public void Without_a_system_message_the_tools_get_one_and_without_tools_none_is_added()
    {
        IReadOnlyList<ChatMessage> withTools = DefaultToolPrompt.Rewrite([new ChatMessage("user", "hi")], Tools);
        IReadOnlyList<ChatMessage> without = DefaultToolPrompt.Rewrite([new ChatMessage("user", "hi")], null);

        Assert.Equal(["system", "user"], withTools.Select(m => m.Role));
        Assert.StartsWith("# Tools", withTools[0].Content);
        Assert.Equal([new ChatMessage("user", "hi")], without);
    }

    [Theory]
    [InlineData("qwen3-random-2l-64d", "hermes")]
    [InlineData("llama3-random-2l-64d", "default")]
    [InlineData("gpt2-random-2l-64d", "default")]
    public void The_family_follows_the_chat_template(string model, string family)
    {
        ChatPromptFormatter formatter = ChatPromptFormatter.Load(TestFixtures.ModelDirectory(model), "<|endoftext|>");

        Assert.Equal(family, ToolCallFamily.Of(formatter).Name);
    }

    [Fact]
    public void A_template_that_takes_tools_without_the_hermes_marker_is_llama_3_1_json()
    {
        var formatter = ChatPromptFormatter.FromTemplate(
            "{% if tools %}{{ tools | tojson }}{% endif %}{% for m in messages %}{{ m.content }}{% if m.tool_calls %}{{ m.tool_calls | tojson }}{% endif %}{% endfor %}",
            "<|endoftext|>");

        Assert.Equal("llama3_json", ToolCallFamily.Of(formatter).Name);
    }
}
