using System.Text;
using LlmServer.Inference.StructuredOutput;

namespace LlmServer.OpenAi.Chat.ToolCalling;

/// <summary>
/// The decoding constraint a tool-calling request gets, its call grammar compiled once per tool set: clients send
/// the same tools with every request of a conversation. A schema the grammar cannot hold is a 400 naming the
/// function's <c>parameters</c>.
/// </summary>
public sealed class ToolCallGrammars(JsonGrammarCache cache)
{
    /// <summary>
    /// Null when decoding stays free: tool_choice "none", or "auto" for a family without a call marker. With
    /// "required" and a named function every token follows the grammar; with "auto" the grammar takes over at the
    /// family's call marker. The schemas are checked whenever the reply is parsed for calls, constrained or not.
    /// </summary>
    public GrammarConstraint? ConstraintFor(ToolCallingRequest tools, ToolCallFamily family)
    {
        if (tools.Mode == ToolChoiceMode.None)
        {
            return null;
        }
        IReadOnlyList<ToolFunction> functions = tools.Mode == ToolChoiceMode.Named
            ? tools.Functions.Where(f => f.Name == tools.NamedFunction).ToArray()
            : tools.Functions;
        bool parallel = tools.Parallel && tools.Mode != ToolChoiceMode.Named;
        JsonGrammar grammar = Compile(tools, functions, family.Syntax, parallel);
        return tools.Mode switch
        {
            ToolChoiceMode.Auto when family.AutoTrigger is null => null,
            ToolChoiceMode.Auto => new GrammarConstraint(grammar, family.AutoTrigger),
            _ => new GrammarConstraint(grammar),
        };
    }

    /// <summary>
    /// One constraint for a request with tools and a response_format. Calls that are required leave no content for
    /// the format to shape; under "auto" the reply is either the format's document or calls, whichever the model
    /// begins, which a grammar holds from the first token (the two begin differently: "{" or "[" against a marker).
    /// </summary>
    public static GrammarConstraint? WithResponseFormat(GrammarConstraint? tools, GrammarConstraint? responseFormat) =>
        (tools, responseFormat) switch
        {
            (null, _) => responseFormat,
            (_, null) => tools,
            ({ Trigger: null }, _) => tools,
            _ => new GrammarConstraint(JsonGrammar.Either(responseFormat.Grammar, tools.Grammar)),
        };

    private JsonGrammar Compile(ToolCallingRequest tools, IReadOnlyList<ToolFunction> functions, ToolCallSyntax syntax, bool parallel)
    {
        var key = new StringBuilder();
        key.Append(syntax).Append('|').Append(parallel).Append('|');
        foreach (ToolFunction function in functions)
        {
            key.Append(function.Name).Append('|').Append(function.Strict).Append('|').Append(function.Parameters?.GetRawText() ?? "none").Append('|');
        }
        try
        {
            return cache.GetOrCompile(key.ToString(), () => ToolCallGrammar.Build(functions, syntax, parallel));
        }
        catch (Exception e) when (e is SchemaNotSupportedException or GrammarTooAmbiguousException)
        {
            throw Refusal(tools, syntax, e);
        }
    }

    /// <summary>The error names the first function whose schema fails on its own.</summary>
    private static ApiException Refusal(ToolCallingRequest tools, ToolCallSyntax syntax, Exception failure)
    {
        for (int i = 0; i < tools.Functions.Count; i++)
        {
            try
            {
                ToolCallGrammar.Build([tools.Functions[i]], syntax, parallel: false);
            }
            catch (Exception e) when (e is SchemaNotSupportedException or GrammarTooAmbiguousException)
            {
                return ApiException.InvalidParameter(tools.ParametersParams[i], $"Invalid schema for function '{tools.Functions[i].Name}': {e.Message}");
            }
        }
        return ApiException.InvalidParameter(tools.Legacy ? "functions" : "tools", $"The tools cannot be held to a grammar: {failure.Message}");
    }
}
