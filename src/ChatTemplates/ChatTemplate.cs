namespace LlmServer.ChatTemplates;

/// <summary>
/// A Hugging Face chat template (the Jinja <c>chat_template</c> of <c>tokenizer_config.json</c>),
/// parsed once and rendered per request to turn chat messages into the prompt text the model expects.
/// Rendering follows Hugging Face's <c>apply_chat_template</c>: <c>trim_blocks</c> and
/// <c>lstrip_blocks</c> on, <c>raise_exception</c> and <c>strftime_now</c> available.
/// Instances are immutable and safe to render from several threads at once.
/// </summary>
public sealed class ChatTemplate
{
    private readonly IReadOnlyList<TemplateStatement> _body;

    private ChatTemplate(string source, IReadOnlyList<TemplateStatement> body)
    {
        Source = source;
        _body = body;
    }

    /// <summary>The template text as given to <see cref="Parse"/>.</summary>
    public string Source { get; }

    /// <exception cref="ChatTemplateException">The template has a syntax error; the message names the line.</exception>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new ChatTemplate(source, TemplateParser.Parse(source));
    }

    /// <summary>
    /// Renders the prompt. The template sees <c>messages</c> (dicts with <c>role</c>, <c>content</c> and,
    /// when set, <c>name</c>), <c>add_generation_prompt</c>, and every entry of
    /// <paramref name="extraVariables"/> (such as <c>bos_token</c>, <c>eos_token</c> or <c>tools</c>).
    /// Extra values may be strings, numbers, booleans, null, dictionaries, sequences or
    /// System.Text.Json elements; <c>messages</c> and <c>add_generation_prompt</c> always come from the
    /// dedicated parameters.
    /// </summary>
    /// <exception cref="ChatTemplateException">
    /// The template rejected the conversation through <c>raise_exception</c> (the message is the
    /// template's own) or failed while rendering.
    /// </exception>
    public string Render(
        IReadOnlyList<ChatMessage> messages,
        bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extraVariables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return RenderWith(messages.Select(message => (object?)TemplateValue.MessageToDict(message)).ToList(), addGenerationPrompt, extraVariables);
    }

    /// <summary>
    /// As <see cref="Render(IReadOnlyList{ChatMessage}, bool, IReadOnlyDictionary{string, object?}?)"/>, for
    /// messages with more than role, content and name (an assistant's <c>tool_calls</c>, a <c>reasoning_content</c>):
    /// each message is a <see cref="ChatMessage"/>, a dictionary or a System.Text.Json element, passed to the
    /// template as is.
    /// </summary>
    public string RenderMessages(
        IReadOnlyList<object?> messages,
        bool addGenerationPrompt,
        IReadOnlyDictionary<string, object?>? extraVariables = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return RenderWith(messages.Select(TemplateValue.FromClr).ToList(), addGenerationPrompt, extraVariables);
    }

    private string RenderWith(List<object?> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, object?>? extraVariables)
    {
        var globals = new TemplateScope();
        TemplateGlobals.AddTo(globals);

        // Caller variables live in a child scope so they can override a global such as strftime_now.
        var variables = globals.CreateChild();
        foreach (var (name, value) in extraVariables ?? new Dictionary<string, object?>())
        {
            variables.Set(name, TemplateValue.FromClr(value));
        }

        variables.Set("messages", messages);
        variables.Set("add_generation_prompt", addGenerationPrompt);
        return TemplateEvaluator.Render(_body, variables);
    }
}
