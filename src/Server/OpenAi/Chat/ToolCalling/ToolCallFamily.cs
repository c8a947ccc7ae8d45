using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>
/// How a model is asked for tool calls and how it writes them, read from its chat template: Hermes (Qwen2.5, Qwen3:
/// the template writes <c>&lt;tool_call&gt;</c>), Llama 3.1's JSON (the template takes tools but writes no such marker),
/// and, for a template that takes no tools at all, <see cref="Default"/>: the tools described in a system message
/// and the calls written as Hermes calls, as Qwen's template asks (<see cref="DefaultToolPrompt"/>).
/// </summary>
public sealed class ToolCallFamily
{
    public static ToolCallFamily Hermes { get; } = new("hermes", ToolCallSyntax.Hermes, HermesToolCallParser.CallStart, templateTakesTools: true);

    public static ToolCallFamily Llama3Json { get; } = new("llama3_json", ToolCallSyntax.Llama3Json, autoTrigger: null, templateTakesTools: true);

    public static ToolCallFamily Default { get; } = new("default", ToolCallSyntax.Hermes, HermesToolCallParser.CallStart, templateTakesTools: false);

    private ToolCallFamily(string name, ToolCallSyntax syntax, string? autoTrigger, bool templateTakesTools)
    {
        Name = name;
        Syntax = syntax;
        AutoTrigger = autoTrigger;
        TemplateTakesTools = templateTakesTools;
    }

    public string Name { get; }

    public ToolCallSyntax Syntax { get; }

    /// <summary>
    /// The text that starts a call under tool_choice "auto", from which on decoding follows the call grammar, so a
    /// started call is always a valid one. Llama 3.1's calls have no such marker (a bare "{" starts one), so under
    /// "auto" its replies are free and a call that does not parse is content.
    /// </summary>
    public string? AutoTrigger { get; }

    /// <summary>Whether the chat template renders the tools itself; otherwise <see cref="DefaultToolPrompt"/> does.</summary>
    public bool TemplateTakesTools { get; }

    public static ToolCallFamily Of(ChatPromptFormatter formatter)
    {
        string source = formatter.TemplateSource;
        if (source.Contains(HermesToolCallParser.CallStart, StringComparison.Ordinal))
        {
            return Hermes;
        }
        return formatter.TakesTools ? Llama3Json : Default;
    }

    /// <param name="constrained">Whether decoding follows the call grammar wherever a call is (Llama 3.1's parser then streams arguments as they come).</param>
    public ToolCallParser CreateParser(IReadOnlyCollection<string> functionNames, bool constrained) =>
        Syntax == ToolCallSyntax.Llama3Json
            ? new Llama3JsonToolCallParser(functionNames, constrained)
            : new HermesToolCallParser(functionNames);
}
