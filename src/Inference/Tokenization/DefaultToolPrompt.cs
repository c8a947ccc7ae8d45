using System.Text.Json;
using LlmServer.ChatTemplates;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// Tool calling for a chat template that knows nothing of tools (the Llama 3 fixture's, GPT-2's default ChatML):
/// the conversation is rewritten into plain turns such a template renders, in the words Qwen's template uses, since
/// calls are then parsed as Hermes calls. The tools go into the system message (appended to the client's own, or
/// a new first one); an assistant turn's calls become <c>&lt;tool_call&gt;</c> elements after its text; a run of
/// tool messages becomes one user turn of <c>&lt;tool_response&gt;</c> elements.
/// </summary>
public static class DefaultToolPrompt
{
    // Qwen3's chat template, word for word, so the tools and calls read as in the most common tool-calling format.
    private static readonly ChatTemplate ToolsDescription = ChatTemplate.Parse(
        "{{- '# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n" +
        "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}" +
        "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}" +
        "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n" +
        "<tool_call>\\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\\n</tool_call>' }}");

    private static readonly ChatTemplate ToolCalls = ChatTemplate.Parse(
        "{%- for tool_call in messages[0].tool_calls %}" +
        "{%- if not loop.first %}{{- '\\n' }}{%- endif %}" +
        "{%- set tool_call = tool_call.function %}" +
        "{{- '<tool_call>\\n{\"name\": \"' }}{{- tool_call.name }}{{- '\", \"arguments\": ' }}{{- tool_call.arguments | tojson }}{{- '}\\n</tool_call>' }}" +
        "{%- endfor %}");

    /// <param name="tools">The request's tools in OpenAI's shape, or null.</param>
    public static IReadOnlyList<ChatMessage> Rewrite(IReadOnlyList<ChatMessage> messages, JsonElement? tools)
    {
        var rewritten = new List<ChatMessage>(messages.Count + 1);
        if (tools is { ValueKind: JsonValueKind.Array } list && list.GetArrayLength() > 0)
        {
            string description = ToolsDescription.Render([], addGenerationPrompt: false, new Dictionary<string, object?> { ["tools"] = list });
            if (messages.Count > 0 && messages[0].Role is "system" or "developer")
            {
                rewritten.Add(messages[0] with { Content = messages[0].Content + "\n\n" + description });
                messages = messages.Skip(1).ToArray();
            }
            else
            {
                rewritten.Add(new ChatMessage("system", description));
            }
        }

        for (int i = 0; i < messages.Count; i++)
        {
            ChatMessage message = messages[i];
            if (message.ToolCalls is { Count: > 0 })
            {
                string calls = ToolCalls.Render([message], addGenerationPrompt: false);
                string content = message.Content.Length > 0 ? message.Content + "\n" + calls : calls;
                rewritten.Add(new ChatMessage(message.Role, content, message.Name));
            }
            else if (message.Role == "tool")
            {
                var responses = new List<string>();
                for (; i < messages.Count && messages[i].Role == "tool"; i++)
                {
                    responses.Add("<tool_response>\n" + messages[i].Content + "\n</tool_response>");
                }
                i--;
                rewritten.Add(new ChatMessage("user", string.Join("\n", responses)));
            }
            else
            {
                rewritten.Add(new ChatMessage(message.Role, message.Content, message.Name));
            }
        }
        return rewritten;
    }
}
