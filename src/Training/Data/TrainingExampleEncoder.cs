using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Training.Data;

/// <summary>
/// Turns one line of an OpenAI fine-tuning file into tokens and a trained mask, rendering chat
/// examples with the model's own chat template so that training sees exactly the layout serving
/// will produce.
/// </summary>
public sealed class TrainingExampleEncoder
{
    private readonly ITokenizer _tokenizer;
    private readonly ChatPromptFormatter _formatter;

    public TrainingExampleEncoder(ITokenizer tokenizer, ChatPromptFormatter formatter)
    {
        _tokenizer = tokenizer;
        _formatter = formatter;
    }

    /// <summary>Encodes a chat (<c>{"messages":[...]}</c>) or prompt/completion line.</summary>
    /// <exception cref="FormatException">The line is not an example of either format, or its chat cannot be rendered; the message says why.</exception>
    public TrainingExample Encode(string jsonLine)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(jsonLine);
        }
        catch (JsonException e)
        {
            throw new FormatException($"not valid JSON ({e.Message})", e);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("not a JSON object");
            }
            if (root.TryGetProperty("messages", out JsonElement messages))
            {
                return EncodeChat(ReadMessages(messages, out bool[] trainedTurns), trainedTurns, ReadTools(root));
            }
            if (root.TryGetProperty("prompt", out _) || root.TryGetProperty("completion", out _))
            {
                return EncodePromptCompletion(ReadString(root, "prompt"), ReadString(root, "completion"));
            }
            throw new FormatException("neither a chat example (\"messages\") nor a prompt/completion example (\"prompt\" and \"completion\")");
        }
    }

    /// <summary>
    /// Tokens of the rendered conversation; trained are the tokens of every assistant turn whose
    /// <paramref name="trainedTurns"/> flag is set (OpenAI's <c>"weight": 0</c> clears it).
    /// </summary>
    /// <param name="tools">
    /// The example's <c>tools</c> in OpenAI's shape, or null. They reach the template as serving gives them: as they
    /// are to one that renders tools, and through <see cref="DefaultToolPrompt"/> to one that does not, so a model
    /// learns its calls in the very layout a chat request with tools will show it.
    /// </param>
    /// <remarks>
    /// Assistant turn i is what rendering messages[..i+1] without a generation prompt adds to
    /// rendering messages[..i] with one: the prompt serving would send ends where the turn starts.
    /// With ChatML that is the content, "&lt;|im_end|&gt;" and the "\n" the template writes after it:
    /// the model learns to end its turn, which is where serving's stop string cuts generation
    /// (the "\n" is never generated there, and training on it costs nothing). Each part is tokenized
    /// on its own, as serving tokenizes the prompt on its own and the model then emits the turn.
    /// </remarks>
    public TrainingExample EncodeChat(IReadOnlyList<ChatMessage> messages, IReadOnlyList<bool> trainedTurns, JsonElement? tools = null)
    {
        bool callsTools = tools is not null || messages.Any(m => m.ToolCalls is { Count: > 0 } || m.Role == "tool");
        if (callsTools && !_formatter.TakesTools)
        {
            (messages, trainedTurns) = RewriteForDefaultToolPrompt(messages, trainedTurns, tools);
            tools = null;
        }
        string full = Render(messages, messages.Count, addGenerationPrompt: false, tools);
        var parts = new List<(string Text, bool Trained)>();
        int covered = 0;
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i].Role != "assistant")
            {
                continue;
            }
            string prompt = Render(messages, i, addGenerationPrompt: true, tools);
            string throughTurn = Render(messages, i + 1, addGenerationPrompt: false, tools);
            if (prompt.Length < covered || !throughTurn.StartsWith(prompt, StringComparison.Ordinal)
                || !full.StartsWith(throughTurn, StringComparison.Ordinal))
            {
                throw new FormatException(
                    $"the chat template does not render this conversation prefix-stably at message {i + 1} " +
                    "(the prompt before an assistant turn is not the start of the conversation rendered through it), " +
                    "so the assistant's tokens cannot be told apart");
            }
            parts.Add((full[covered..prompt.Length], false));
            parts.Add((full[prompt.Length..throughTurn.Length], trainedTurns[i]));
            covered = throughTurn.Length;
        }
        parts.Add((full[covered..], false));

        var ids = new List<int>();
        var trained = new List<bool>();
        foreach ((string text, bool isTrained) in parts)
        {
            if (text.Length == 0)
            {
                continue;
            }
            IReadOnlyList<int> tokens = _tokenizer.Encode(text);
            ids.AddRange(tokens);
            trained.AddRange(Enumerable.Repeat(isTrained, tokens.Count));
        }
        return new TrainingExample(ids.ToArray(), trained.ToArray());
    }

    /// <summary>The prompt's tokens, then the completion's and end-of-text; trained are the completion and end-of-text.</summary>
    /// <remarks>
    /// The prompt gets the post-processor's special tokens (Llama 3's &lt;|begin_of_text|&gt;; GPT-2 has
    /// none), as /v1/completions encodes a prompt in serving: the model learns on what it will be given.
    /// </remarks>
    public TrainingExample EncodePromptCompletion(string prompt, string completion)
    {
        IReadOnlyList<int> promptIds = _tokenizer.Encode(prompt, addSpecialTokens: true, int.MaxValue, CancellationToken.None);
        IReadOnlyList<int> completionIds = _tokenizer.Encode(completion);
        int[] ids = [.. promptIds, .. completionIds, _tokenizer.EndOfTextId];
        bool[] trained = new bool[ids.Length];
        trained.AsSpan(promptIds.Count).Fill(true);
        return new TrainingExample(ids, trained);
    }

    /// <summary>
    /// The conversation as <see cref="DefaultToolPrompt"/> rewrites it, with each assistant turn keeping its trained
    /// flag: the rewrite adds or extends a system message and merges runs of tool messages, but keeps every assistant
    /// turn, in order.
    /// </summary>
    private static (IReadOnlyList<ChatMessage>, IReadOnlyList<bool>) RewriteForDefaultToolPrompt(
        IReadOnlyList<ChatMessage> messages, IReadOnlyList<bool> trainedTurns, JsonElement? tools)
    {
        Queue<bool> assistantFlags = new(messages.Select((m, i) => (m, i)).Where(p => p.m.Role == "assistant").Select(p => trainedTurns[p.i]));
        IReadOnlyList<ChatMessage> rewritten = DefaultToolPrompt.Rewrite(messages, tools);
        bool[] flags = rewritten.Select(m => m.Role == "assistant" && assistantFlags.Dequeue()).ToArray();
        return (rewritten, flags);
    }

    private string Render(IReadOnlyList<ChatMessage> messages, int count, bool addGenerationPrompt, JsonElement? tools)
    {
        try
        {
            return _formatter.Format(messages.Take(count).ToList(), addGenerationPrompt, tools);
        }
        catch (ChatTemplateException e)
        {
            throw new FormatException($"the chat template rejects the first {count} messages: {e.Message}", e);
        }
    }

    private static List<ChatMessage> ReadMessages(JsonElement messages, out bool[] trainedTurns)
    {
        if (messages.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("\"messages\" must be an array");
        }
        var read = new List<ChatMessage>();
        var trained = new List<bool>();
        foreach (JsonElement message in messages.EnumerateArray())
        {
            string subject = $"message {read.Count + 1}";
            if (message.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"{subject} must be an object");
            }
            string role = ReadString(message, "role", subject);
            IReadOnlyList<ChatToolCall>? toolCalls = role == "assistant" ? ReadToolCalls(message, subject) : null;
            // An assistant turn that only calls tools has no content (null or absent, as OpenAI writes it).
            string content = toolCalls is not null && IsAbsent(message, "content") ? "" : ReadString(message, "content", subject);
            string? name = message.TryGetProperty("name", out JsonElement n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            string? toolCallId = role == "tool" && message.TryGetProperty("tool_call_id", out JsonElement id) && id.ValueKind == JsonValueKind.String
                ? id.GetString()
                : null;
            bool excluded = message.TryGetProperty("weight", out JsonElement weight)
                && weight.ValueKind == JsonValueKind.Number && weight.GetDouble() == 0;
            read.Add(new ChatMessage(role, content, name) { ToolCalls = toolCalls, ToolCallId = toolCallId });
            trained.Add(role == "assistant" && !excluded);
        }
        trainedTurns = trained.ToArray();
        return read;
    }

    /// <summary>
    /// An assistant turn's <c>tool_calls</c> as a template reads them: OpenAI writes <c>arguments</c> as a JSON string,
    /// templates take the object (as vLLM passes it).
    /// </summary>
    private static IReadOnlyList<ChatToolCall>? ReadToolCalls(JsonElement message, string subject)
    {
        if (IsAbsent(message, "tool_calls"))
        {
            return null;
        }
        JsonElement calls = message.GetProperty("tool_calls");
        if (calls.ValueKind != JsonValueKind.Array || calls.GetArrayLength() == 0)
        {
            throw new FormatException($"{subject}: \"tool_calls\" must be a non-empty array");
        }
        var read = new List<ChatToolCall>();
        foreach (JsonElement call in calls.EnumerateArray())
        {
            string where = $"{subject}: tool call {read.Count + 1}";
            if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out JsonElement function) || function.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"{where} must be an object with a \"function\" object");
            }
            string name = ReadString(function, "name", where);
            if (!function.TryGetProperty("arguments", out JsonElement arguments))
            {
                throw new FormatException($"{where}: \"arguments\" is missing");
            }
            JsonElement parsed = arguments.ValueKind == JsonValueKind.String ? ParseArguments(arguments.GetString()!, where) : arguments.Clone();
            if (parsed.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException($"{where}: \"arguments\" must be a JSON object");
            }
            string? id = call.TryGetProperty("id", out JsonElement callId) && callId.ValueKind == JsonValueKind.String ? callId.GetString() : null;
            read.Add(new ChatToolCall(id, name, parsed));
        }
        return read;
    }

    private static JsonElement ParseArguments(string arguments, string where)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(arguments);
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new FormatException($"{where}: \"arguments\" is not valid JSON ({e.Message})", e);
        }
    }

    /// <summary>The example's <c>tools</c> (OpenAI's function tools), or null when it offers none.</summary>
    private static JsonElement? ReadTools(JsonElement example)
    {
        if (IsAbsent(example, "tools"))
        {
            return null;
        }
        JsonElement tools = example.GetProperty("tools");
        if (tools.ValueKind != JsonValueKind.Array)
        {
            throw new FormatException("\"tools\" must be an array");
        }
        return tools.GetArrayLength() == 0 ? null : tools.Clone();
    }

    private static bool IsAbsent(JsonElement owner, string property) =>
        !owner.TryGetProperty(property, out JsonElement value) || value.ValueKind == JsonValueKind.Null;

    private static string ReadString(JsonElement owner, string property, string? subject = null)
    {
        string where = subject is null ? "" : subject + ": ";
        if (!owner.TryGetProperty(property, out JsonElement value))
        {
            throw new FormatException($"{where}\"{property}\" is missing");
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            throw new FormatException($"{where}\"{property}\" must be a string");
        }
        return value.GetString()!;
    }
}
