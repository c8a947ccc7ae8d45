using System.Text.Json;

namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// What a constrained reply may be, compiled once and shared (immutable) by every request that uses it:
/// <see cref="AnyObject"/> for <c>json_object</c>, <see cref="FromSchema"/> for a strict <c>json_schema</c>.
/// Feed it bytes through a <see cref="GrammarMatcher"/>.
/// </summary>
public sealed class JsonGrammar
{
    /// <summary>
    /// The most whitespace bytes allowed in a row between two tokens of the JSON text. None at all would refuse
    /// the ", " and ": " that models trained on JSON write by habit (forcing unlikely tokens); any number would let
    /// a model whose likeliest next token is a space or newline emit them until max_tokens, never closing the
    /// document. Two covers the habits ("\n ", ": ") and bounds every run. No whitespace surrounds the root.
    /// </summary>
    public const int MaxWhitespaceRun = 2;

    /// <summary>Any JSON object, the grammar of <c>response_format: {"type": "json_object"}</c>.</summary>
    public static JsonGrammar AnyObject { get; } = new(AnyValueNode.Instance.Object);

    internal JsonGrammar(GrammarNode root)
    {
        MinimumLengths.Compute(root);
        Root = root;
    }

    internal GrammarNode Root { get; }

    /// <summary>The documents of either grammar: a response_format's reply, or tool calls.</summary>
    public static JsonGrammar Either(JsonGrammar first, JsonGrammar second) => new(AnyOfNode.Of([first.Root, second.Root]));

    /// <summary>
    /// Compiles a schema in OpenAI strict mode's subset, or, not <paramref name="strict"/>, with what that subset
    /// cannot enforce ignored; see <see cref="JsonSchemaCompiler"/>.
    /// </summary>
    /// <exception cref="SchemaNotSupportedException">The schema uses something outside that subset.</exception>
    public static JsonGrammar FromSchema(JsonElement schema, bool strict = true) => JsonSchemaCompiler.Compile(schema, strict);
}
