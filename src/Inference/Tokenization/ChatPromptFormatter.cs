using System.Text.Json;
using LlmServer.ChatTemplates;

namespace LlmServer.Inference.Tokenization;

/// <summary>
/// Turns chat messages into the prompt text the model was trained on: the checkpoint's own
/// <c>chat_template</c> from tokenizer_config.json when it has one, otherwise
/// <see cref="DefaultTemplate"/>.
/// </summary>
public sealed class ChatPromptFormatter
{
    /// <summary>
    /// ChatML written as plain text. GPT-2 has no chat tokens, so the markers are ordinary BPE
    /// pieces; a model fine-tuned on this layout ends its turn with "&lt;|im_end|&gt;", which is why
    /// that string is a stop string whenever this template is in use.
    /// </summary>
    public const string DefaultTemplate =
        "{% for message in messages %}" +
        "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}" +
        "{% endfor %}" +
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    public const string DefaultTemplateEndOfTurn = "<|im_end|>";

    private readonly ChatTemplate _template;
    private readonly Dictionary<string, object?> _variables;

    private ChatPromptFormatter(ChatTemplate template, bool isDefault, string endOfTextToken, IReadOnlyDictionary<string, string?>? configTokens = null)
    {
        _template = template;
        IsDefaultTemplate = isDefault;
        // transformers always passes tools and documents, None when the request has none.
        _variables = new Dictionary<string, object?>
        {
            ["bos_token"] = endOfTextToken,
            ["eos_token"] = endOfTextToken,
            ["tools"] = null,
            ["documents"] = null,
        };

        // transformers passes the special tokens tokenizer_config.json sets (Llama 3's bos <|begin_of_text|>,
        // which its template writes itself); one the config sets to null is not passed at all (Qwen's bos).
        foreach ((string name, string? token) in configTokens ?? new Dictionary<string, string?>())
        {
            if (token is null)
            {
                _variables.Remove(name);
            }
            else
            {
                _variables[name] = token;
            }
        }
    }

    public bool IsDefaultTemplate { get; }

    /// <summary>The template's Jinja source (the default template's when the checkpoint has none): what it renders tells the tool-call family.</summary>
    public string TemplateSource => _template.Source;

    /// <summary>
    /// Whether the template renders the request's <c>tools</c> itself (Llama 3.1, Qwen2.5, Qwen3 do); for one that does
    /// not, <see cref="DefaultToolPrompt"/> rewrites a tool-calling conversation into turns it renders.
    /// </summary>
    public bool TakesTools => _template.Source.Contains("tools", StringComparison.Ordinal);

    /// <summary>
    /// Whether the template renders an assistant turn's <c>tool_calls</c> (Llama 3.1, Qwen2.5, Qwen3 do). One that
    /// does not would drop the calls and leave empty turns, a conversation the client never had.
    /// </summary>
    public bool RendersToolCalls => _template.Source.Contains("tool_calls", StringComparison.Ordinal);

    /// <summary>Stop strings every chat request gets on top of its own.</summary>
    public IReadOnlyList<string> ImplicitStopStrings => IsDefaultTemplate ? [DefaultTemplateEndOfTurn] : [];

    public static ChatPromptFormatter Load(string modelDirectory, ITokenizer tokenizer) =>
        Load(modelDirectory, tokenizer.EndOfTextToken);

    /// <summary>The formatter before there is a tokenizer: training one needs the corpus rendered first.</summary>
    public static ChatPromptFormatter Load(string modelDirectory, string endOfTextToken)
    {
        string configPath = Path.Combine(modelDirectory, "tokenizer_config.json");
        string? source = File.Exists(configPath) ? ReadChatTemplate(configPath) : null;
        try
        {
            return source is null
                ? FromTemplate(source, endOfTextToken)
                : new ChatPromptFormatter(ChatTemplate.Parse(source), isDefault: false, endOfTextToken, ReadConfigTokens(configPath));
        }
        catch (ChatTemplateException e)
        {
            throw new InvalidDataException($"{configPath}: chat_template does not parse: {e.Message}", e);
        }
    }

    /// <summary>A formatter for template source <paramref name="source"/>, or for <see cref="DefaultTemplate"/> when it is null.</summary>
    /// <exception cref="ChatTemplateException">The template does not parse.</exception>
    public static ChatPromptFormatter FromTemplate(string? source, string endOfTextToken) =>
        source is null
            ? new ChatPromptFormatter(ChatTemplate.Parse(DefaultTemplate), isDefault: true, endOfTextToken)
            : new ChatPromptFormatter(ChatTemplate.Parse(source), isDefault: false, endOfTextToken);

    /// <summary>Renders the conversation; a template that rejects it throws <see cref="ChatTemplateException"/>.</summary>
    /// <param name="tools">The request's <c>tools</c> list as the client sent it (the template's <c>tools</c>); null for none.</param>
    public string Format(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt = true, JsonElement? tools = null)
    {
        if (tools is null)
        {
            return _template.Render(messages, addGenerationPrompt, _variables);
        }
        var variables = new Dictionary<string, object?>(_variables) { ["tools"] = tools.Value };
        return _template.Render(messages, addGenerationPrompt, variables);
    }

    /// <summary>bos/eos/pad/unk_token as tokenizer_config.json sets them: a string (or AddedToken object), or null; absent keys are left out.</summary>
    private static Dictionary<string, string?> ReadConfigTokens(string configPath)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(configPath));
        var tokens = new Dictionary<string, string?>();
        foreach (string name in new[] { "bos_token", "eos_token", "pad_token", "unk_token" })
        {
            if (document.RootElement.TryGetProperty(name, out _))
            {
                tokens[name] = HuggingFaceTokenizer.TokenString(document.RootElement, name);
            }
        }

        return tokens;
    }

    /// <summary>Reads chat_template, either a string or transformers' list of named templates (the "default" one).</summary>
    private static string? ReadChatTemplate(string configPath)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(configPath));
            if (!document.RootElement.TryGetProperty("chat_template", out JsonElement template))
            {
                return null;
            }
            return template.ValueKind switch
            {
                JsonValueKind.String => template.GetString(),
                JsonValueKind.Array => template.EnumerateArray()
                    .Where(t => t.TryGetProperty("name", out JsonElement name) && name.GetString() == "default")
                    .Select(t => t.GetProperty("template").GetString())
                    .FirstOrDefault(),
                _ => null,
            };
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{configPath}: not valid JSON ({e.Message})", e);
        }
    }
}
