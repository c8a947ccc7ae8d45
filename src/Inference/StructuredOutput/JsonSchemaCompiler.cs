using System.Text.Encodings.Web;
using System.Text.Json;

namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// Compiles a JSON Schema in the subset OpenAI's strict mode supports into a <see cref="JsonGrammar"/>: object
/// (properties, required, additionalProperties false), string, number, integer, boolean, null, a list of types,
/// enum, const, anyOf, arrays with items, and <c>$ref</c> into <c>$defs</c>/<c>definitions</c> or the root,
/// recursion included. Annotations (description, title, ...) are ignored. Anything else, such as pattern,
/// format, minimum or allOf, is refused with the keyword and its path rather than silently not enforced, except
/// an integer's minimum and maximum that its digit bound already keeps (zod's safe-integer range).
/// A schema that is not strict (a tool without <c>strict: true</c>, a <c>json_schema</c> with <c>strict: false</c>)
/// promises less, as on OpenAI: there the keywords this subset cannot enforce are ignored, <c>oneOf</c> is read as
/// <c>anyOf</c>, a schema without a type allows any value, and an object that does not close itself
/// (additionalProperties not false) still gets only its declared properties, or any object when it declares none.
/// </summary>
internal sealed class JsonSchemaCompiler
{
    private static readonly HashSet<string> Annotations =
        ["description", "title", "$schema", "$id", "$comment", "$defs", "definitions", "examples", "default"];

    private static readonly HashSet<string> TypeKeywords =
        ["type", "properties", "required", "additionalProperties", "items"];

    private static readonly HashSet<string> ObjectKeywords = ["properties", "required", "additionalProperties"];

    // Writes enum/const values and keys as the model should emit them: compact, non-ASCII as UTF-8 rather than
    // \u escapes (what models write), with only the escapes JSON requires.
    private static readonly JsonWriterOptions CanonicalWriter = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        Indented = false,
    };

    private readonly JsonElement _root;
    private readonly bool _strict;
    private readonly Dictionary<string, RefNode> _refs = new(StringComparer.Ordinal);
    private readonly Dictionary<RefNode, string> _refPaths = [];

    // The references whose target is being compiled with no byte consumed since it began: meeting one of them
    // again before an object or array opens is a reference that reaches itself without input.
    private HashSet<string> _openAtStart = new(StringComparer.Ordinal);

    private JsonSchemaCompiler(JsonElement root, bool strict) => (_root, _strict) = (root, strict);

    public static JsonGrammar Compile(JsonElement schema, bool strict = true) => new(CompileNode(schema, strict));

    /// <summary>The grammar node of a schema whose <c>$ref</c>s resolve against the schema itself.</summary>
    internal static GrammarNode CompileNode(JsonElement schema, bool strict)
    {
        var compiler = new JsonSchemaCompiler(schema, strict);
        GrammarNode root = compiler.CompileSchema(schema, "$");
        compiler.RefuseRefsThatConsumeNothing();
        return root;
    }

    /// <summary>Writes <paramref name="value"/> as the compact JSON text a constrained reply must contain.</summary>
    internal static byte[] CanonicalBytes(JsonElement value)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, CanonicalWriter))
        {
            value.WriteTo(writer);
        }

        return buffer.ToArray();
    }

    internal static byte[] KeyBytes(string name)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, CanonicalWriter))
        {
            writer.WriteStringValue(name);
        }

        return buffer.ToArray();
    }

    private GrammarNode CompileSchema(JsonElement schema, string path)
    {
        if (schema.ValueKind != JsonValueKind.Object)
        {
            throw new SchemaNotSupportedException(
                schema.ValueKind.ToString().ToLowerInvariant(), path, "a schema must be a JSON object");
        }

        var constraints = new List<string>();
        foreach (JsonProperty keyword in schema.EnumerateObject())
        {
            if (Annotations.Contains(keyword.Name))
            {
                continue;
            }

            if (!TypeKeywords.Contains(keyword.Name) && keyword.Name is not ("enum" or "const" or "anyOf" or "$ref"))
            {
                if (_strict)
                {
                    if (IsBoundTheGrammarKeeps(keyword, schema))
                    {
                        continue;
                    }

                    throw new SchemaNotSupportedException(keyword.Name, path, "strict structured outputs do not enforce it");
                }

                if (keyword.Name is not ("oneOf" or "allOf"))
                {
                    continue;
                }
            }

            constraints.Add(keyword.Name);
        }

        if (schema.TryGetProperty("$ref", out JsonElement reference))
        {
            RefuseCompanions("$ref", constraints, path);
            return Resolve(reference, path);
        }

        // oneOf's "exactly one" cannot be enforced byte by byte; outside strict mode it is read as anyOf.
        string? union = constraints.Contains("anyOf") ? "anyOf" : constraints.Contains("oneOf") ? "oneOf" : null;
        if (union is not null)
        {
            JsonElement anyOf = schema.GetProperty(union);
            RefuseCompanions(union, constraints, path);
            if (anyOf.ValueKind != JsonValueKind.Array || anyOf.GetArrayLength() == 0)
            {
                throw new SchemaNotSupportedException(union, path, "it must be a non-empty array of schemas");
            }

            GrammarNode[] alternatives = anyOf.EnumerateArray()
                .Select((alternative, i) => CompileSchema(alternative, $"{path}.{union}[{i}]"))
                .ToArray();
            return AnyOfNode.Of(alternatives);
        }

        // Pydantic wraps a described reference as allOf of one schema; more than one would need an intersection.
        if (constraints.Contains("allOf"))
        {
            JsonElement allOf = schema.GetProperty("allOf");
            if (allOf.ValueKind != JsonValueKind.Array || allOf.GetArrayLength() != 1)
            {
                throw new SchemaNotSupportedException("allOf", path, "only an allOf of one schema is supported");
            }

            RefuseCompanions("allOf", constraints, path);
            return CompileSchema(allOf[0], $"{path}.allOf[0]");
        }

        // enum and const fix the exact text, which already implies its type; a "type" beside them only restates it.
        if (schema.TryGetProperty("enum", out JsonElement values))
        {
            if (values.ValueKind != JsonValueKind.Array || values.GetArrayLength() == 0)
            {
                throw new SchemaNotSupportedException("enum", path, "it must be a non-empty array");
            }

            GrammarNode[] literals = values.EnumerateArray().Select(v => (GrammarNode)new LiteralNode(CanonicalBytes(v))).ToArray();
            return AnyOfNode.Of(literals);
        }

        if (schema.TryGetProperty("const", out JsonElement constant))
        {
            return new LiteralNode(CanonicalBytes(constant));
        }

        if (!schema.TryGetProperty("type", out JsonElement type))
        {
            if (!_strict)
            {
                return AnyValueNode.Instance;
            }

            throw new SchemaNotSupportedException("type", path, "every schema needs a type, enum, const, anyOf or $ref");
        }

        if (type.ValueKind == JsonValueKind.Array)
        {
            // ["string", "null"]: one grammar per type, the other keywords applying to the types they fit.
            var alternatives = new List<GrammarNode>();
            foreach (JsonElement one in type.EnumerateArray())
            {
                alternatives.Add(CompileType(schema, one, path, typeList: true));
            }

            if (alternatives.Count == 0)
            {
                throw new SchemaNotSupportedException("type", path, "a list of types must not be empty");
            }

            return AnyOfNode.Of([.. alternatives]);
        }

        return CompileType(schema, type, path, typeList: false);
    }

    /// <summary>
    /// A minimum or maximum on an integer that the integer's digit bound (<see cref="NumberNode.MaxDigits"/>) already
    /// keeps. zod's <c>.int()</c> writes JavaScript's safe-integer range as both, so every zod schema with an integer
    /// carries them; refusing them would refuse what the grammar enforces anyway.
    /// </summary>
    private static bool IsBoundTheGrammarKeeps(JsonProperty keyword, JsonElement schema)
    {
        if (keyword.Value.ValueKind != JsonValueKind.Number
            || !schema.TryGetProperty("type", out JsonElement type) || type.ValueKind != JsonValueKind.String || type.GetString() != "integer")
        {
            return false;
        }

        double largestInteger = Math.Pow(10, NumberNode.MaxDigits) - 1;
        return keyword.Name switch
        {
            "minimum" => keyword.Value.GetDouble() <= -largestInteger,
            "maximum" => keyword.Value.GetDouble() >= largestInteger,
            _ => false,
        };
    }

    private void RefuseCompanions(string keyword, List<string> constraints, string path)
    {
        if (!_strict)
        {
            return;
        }

        string? companion = constraints.FirstOrDefault(c => c != keyword);
        if (companion is not null)
        {
            throw new SchemaNotSupportedException(companion, path, $"it cannot stand beside '{keyword}' in the same schema");
        }
    }

    private GrammarNode CompileType(JsonElement schema, JsonElement type, string path, bool typeList)
    {
        string? name = type.ValueKind == JsonValueKind.String ? type.GetString() : null;
        switch (name)
        {
            case "object":
                if (!typeList)
                {
                    RefuseKeywordsOfOtherTypes(schema, path, ["items"]);
                }

                return InsideContainer(() => CompileObject(schema, path));
            case "array":
                if (!typeList)
                {
                    RefuseKeywordsOfOtherTypes(schema, path, ObjectKeywords);
                }

                return InsideContainer(() => new ArrayNode(schema.TryGetProperty("items", out JsonElement items)
                    ? CompileSchema(items, $"{path}.items")
                    : AnyValueNode.Instance));
            case "string" or "number" or "integer" or "boolean" or "null":
                if (!typeList)
                {
                    RefuseKeywordsOfOtherTypes(schema, path, ObjectKeywords.Append("items"));
                }

                return name switch
                {
                    "string" => StringNode.Instance,
                    "number" => NumberNode.Number,
                    "integer" => NumberNode.Integer,
                    "boolean" => AnyOfNode.Of([LiteralNode.True, LiteralNode.False]),
                    _ => LiteralNode.Null,
                };
            default:
                throw new SchemaNotSupportedException("type", path, $"unknown type {type.GetRawText()}");
        }
    }

    /// <summary>Compiles what sits inside an object or array, where its opening byte has been consumed.</summary>
    private GrammarNode InsideContainer(Func<GrammarNode> compile)
    {
        HashSet<string> outside = _openAtStart;
        _openAtStart = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            return compile();
        }
        finally
        {
            _openAtStart = outside;
        }
    }

    private void RefuseKeywordsOfOtherTypes(JsonElement schema, string path, IEnumerable<string> keywords)
    {
        if (!_strict)
        {
            return;
        }

        foreach (string keyword in keywords)
        {
            if (schema.TryGetProperty(keyword, out _))
            {
                throw new SchemaNotSupportedException(keyword, path, "it does not apply to the schema's type");
            }
        }
    }

    private GrammarNode CompileObject(JsonElement schema, string path)
    {
        bool closed = !schema.TryGetProperty("additionalProperties", out JsonElement additional) || additional.ValueKind == JsonValueKind.False;
        if (!closed && _strict)
        {
            throw new SchemaNotSupportedException("additionalProperties", path, "only false is supported (every key must be a declared property)");
        }

        if (!closed && !schema.TryGetProperty("properties", out _))
        {
            return AnyValueNode.Instance.Object;
        }

        var required = new HashSet<string>(StringComparer.Ordinal);
        if (schema.TryGetProperty("required", out JsonElement requiredList))
        {
            if (requiredList.ValueKind != JsonValueKind.Array)
            {
                throw new SchemaNotSupportedException("required", path, "it must be an array of property names");
            }

            foreach (JsonElement name in requiredList.EnumerateArray())
            {
                if (name.ValueKind != JsonValueKind.String)
                {
                    throw new SchemaNotSupportedException("required", path, "it must be an array of property names");
                }

                required.Add(name.GetString()!);
            }
        }

        var properties = new List<ObjectProperty>();
        if (schema.TryGetProperty("properties", out JsonElement declared))
        {
            if (declared.ValueKind != JsonValueKind.Object)
            {
                throw new SchemaNotSupportedException("properties", path, "it must be an object of schemas");
            }

            foreach (JsonProperty property in declared.EnumerateObject())
            {
                GrammarNode value = CompileSchema(property.Value, $"{path}.properties.{property.Name}");
                properties.Add(new ObjectProperty(property.Name, KeyBytes(property.Name), value, required.Contains(property.Name)));
            }
        }

        string? undeclared = required.FirstOrDefault(r => properties.All(p => p.Name != r));
        if (undeclared is not null)
        {
            throw new SchemaNotSupportedException("required", path, $"'{undeclared}' is not among the properties");
        }

        return new ObjectNode([.. properties]);
    }

    private RefNode Resolve(JsonElement reference, string path)
    {
        string? pointer = reference.ValueKind == JsonValueKind.String ? reference.GetString() : null;
        if (pointer is null || !(pointer == "#" || pointer.StartsWith("#/", StringComparison.Ordinal)))
        {
            throw new SchemaNotSupportedException("$ref", path, "only references inside the schema (#, #/$defs/...) are supported");
        }

        if (_openAtStart.Contains(pointer))
        {
            throw new SchemaNotSupportedException("$ref", path, $"'{pointer}' refers to itself before any value begins");
        }

        if (_refs.TryGetValue(pointer, out RefNode? known))
        {
            return known;
        }

        JsonElement target = _root;
        string targetPath = "$";
        foreach (string escaped in pointer.Length == 1 ? [] : pointer[2..].Split('/'))
        {
            string segment = escaped.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal);
            if (target.ValueKind == JsonValueKind.Object && target.TryGetProperty(segment, out JsonElement child))
            {
                target = child;
            }
            else if (target.ValueKind == JsonValueKind.Array && int.TryParse(segment, out int i) && i >= 0 && i < target.GetArrayLength())
            {
                target = target[i];
            }
            else
            {
                throw new SchemaNotSupportedException("$ref", path, $"'{pointer}' does not resolve");
            }

            targetPath += $".{segment}";
        }

        // Registered before its target is compiled, so that a reference back to it inside the target (recursion)
        // finds this node instead of compiling forever.
        var node = new RefNode(pointer);
        _refs.Add(pointer, node);
        _refPaths.Add(node, path);
        _openAtStart.Add(pointer);
        node.Target = CompileSchema(target, targetPath);
        _openAtStart.Remove(pointer);
        return node;
    }

    /// <summary>
    /// A reference that reaches itself again without a byte in between (<c>{"$ref": "#"}</c> at the root, or
    /// through anyOf) describes no finite text and would send the matcher into endless recursion: refused.
    /// </summary>
    private void RefuseRefsThatConsumeNothing()
    {
        foreach (RefNode start in _refs.Values)
        {
            var visiting = new HashSet<GrammarNode>(ReferenceEqualityComparer.Instance);
            if (ReachesWithoutInput(start.Target!, start, visiting))
            {
                throw new SchemaNotSupportedException("$ref", _refPaths[start], $"'{start.Reference}' refers to itself before any value begins");
            }
        }
    }

    private static bool ReachesWithoutInput(GrammarNode node, RefNode start, HashSet<GrammarNode> visiting)
    {
        if (ReferenceEquals(node, start))
        {
            return true;
        }

        if (!visiting.Add(node))
        {
            return false;
        }

        return node switch
        {
            RefNode reference => ReachesWithoutInput(reference.Target!, start, visiting),
            AnyOfNode anyOf => anyOf.Alternatives.Any(a => ReachesWithoutInput(a, start, visiting)),
            _ => false,
        };
    }
}
