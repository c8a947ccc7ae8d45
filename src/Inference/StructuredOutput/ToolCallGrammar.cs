using System.Text;
using System.Text.Json;

namespace LlmServer.Inference.StructuredOutput;

/// <summary>A function a reply may call: its name and the JSON Schema of its arguments (none: no arguments).</summary>
/// <param name="Strict">The tool's <c>strict</c>: its schema must then lie in the strict subset, and is enforced whole.</param>
public sealed record ToolFunction(string Name, JsonElement? Parameters, bool Strict);

/// <summary>
/// How a model family writes its tool calls around the JSON object <c>{"name": ..., "&lt;ArgumentsKey&gt;": {...}}</c>:
/// the text before and after each call, and between two calls.
/// </summary>
public sealed record ToolCallSyntax(string CallPrefix, string CallSuffix, string Separator, string ArgumentsKey)
{
    /// <summary>Qwen2.5, Qwen3 and Hermes: each call inside its own <c>&lt;tool_call&gt;</c> element.</summary>
    public static ToolCallSyntax Hermes { get; } = new("<tool_call>\n", "\n</tool_call>", "\n", "arguments");

    /// <summary>Llama 3.1's JSON tool calls: the bare object, its arguments under "parameters", calls separated by "; ".</summary>
    public static ToolCallSyntax Llama3Json { get; } = new("", "", "; ", "parameters");
}

/// <summary>
/// The grammar of a reply that is nothing but tool calls in a family's syntax, each naming one of the functions
/// with arguments that match that function's schema: what <c>tool_choice</c> "required" or a named function
/// constrains decoding to, and what a call started under "auto" is held to once its marker appears.
/// </summary>
public static class ToolCallGrammar
{
    /// <exception cref="SchemaNotSupportedException">A strict function's schema uses something outside the strict subset.</exception>
    public static JsonGrammar Build(IReadOnlyList<ToolFunction> functions, ToolCallSyntax syntax, bool parallel)
    {
        if (functions.Count == 0)
        {
            throw new ArgumentException("a tool call needs at least one function", nameof(functions));
        }

        byte[] nameKey = JsonSchemaCompiler.KeyBytes("name");
        byte[] argumentsKey = JsonSchemaCompiler.KeyBytes(syntax.ArgumentsKey);
        var calls = new GrammarNode[functions.Count];
        for (int i = 0; i < functions.Count; i++)
        {
            ToolFunction function = functions[i];
            // OpenAI reads a function without parameters as one that takes none: its arguments are "{}".
            GrammarNode arguments = function.Parameters is { } schema
                ? JsonSchemaCompiler.CompileNode(schema, function.Strict)
                : new ObjectNode([]);
            calls[i] = new ObjectNode(
            [
                new ObjectProperty("name", nameKey, new LiteralNode(JsonSchemaCompiler.KeyBytes(function.Name)), Required: true),
                new ObjectProperty(syntax.ArgumentsKey, argumentsKey, arguments, Required: true),
            ]);
        }

        var parts = new List<GrammarNode>(3);
        if (syntax.CallPrefix.Length > 0)
        {
            parts.Add(new LiteralNode(Encoding.UTF8.GetBytes(syntax.CallPrefix)));
        }

        parts.Add(AnyOfNode.Of(calls));
        if (syntax.CallSuffix.Length > 0)
        {
            parts.Add(new LiteralNode(Encoding.UTF8.GetBytes(syntax.CallSuffix)));
        }

        GrammarNode call = parts.Count == 1 ? parts[0] : new SequenceNode([.. parts]);
        return new JsonGrammar(new RepeatNode(call, Encoding.UTF8.GetBytes(syntax.Separator), parallel ? int.MaxValue : 1));
    }
}
