using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// Compiled grammars by schema, so that a client sending the same schema with every request compiles it once.
/// The key is the schema's compact text with its key order kept: property order is part of the grammar (it is
/// the order the reply's keys must follow), so two schemas that differ only in order are different grammars.
/// </summary>
public sealed class JsonGrammarCache(int capacity = 256)
{
    private readonly ConcurrentDictionary<string, JsonGrammar> _grammars = new(StringComparer.Ordinal);

    public int Count => _grammars.Count;

    /// <exception cref="SchemaNotSupportedException">The schema uses something outside the supported subset.</exception>
    public JsonGrammar GetOrCompile(JsonElement schema, bool strict = true) =>
        GetOrCompile((strict ? "strict:" : "lenient:") + Encoding.UTF8.GetString(JsonSchemaCompiler.CanonicalBytes(schema)),
            () => JsonGrammar.FromSchema(schema, strict));

    /// <summary>The grammar cached under <paramref name="key"/>, which must name everything <paramref name="compile"/> reads.</summary>
    /// <exception cref="SchemaNotSupportedException">A schema uses something outside the supported subset.</exception>
    public JsonGrammar GetOrCompile(string key, Func<JsonGrammar> compile)
    {
        if (_grammars.TryGetValue(key, out JsonGrammar? grammar))
        {
            return grammar;
        }

        grammar = compile();
        // A server fed ever new schemas must not grow without bound; starting over is crude but keeps it bounded,
        // and recompiling a schema costs little beside generating a reply with it.
        if (_grammars.Count >= capacity)
        {
            _grammars.Clear();
        }

        return _grammars.GetOrAdd(key, grammar);
    }
}
