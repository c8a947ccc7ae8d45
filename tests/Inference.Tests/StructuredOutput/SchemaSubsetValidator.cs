using System.Text.Json;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>
/// Checks a parsed document against a schema of the supported subset, independently of the grammar compiler,
/// so that the random walks are judged by a second reading of the schema. It also checks what strict mode adds:
/// keys in the schema's property order, every required key present, no other key.
/// </summary>
internal static class SchemaSubsetValidator
{
    /// <summary>Null when <paramref name="value"/> satisfies <paramref name="schema"/>, otherwise why not.</summary>
    public static string? Check(JsonElement value, JsonElement schema, JsonElement root, string path = "$")
    {
        if (schema.TryGetProperty("$ref", out JsonElement reference))
        {
            return Check(value, Resolve(root, reference.GetString()!), root, path);
        }

        if (schema.TryGetProperty("anyOf", out JsonElement anyOf))
        {
            return anyOf.EnumerateArray().Any(a => Check(value, a, root, path) is null) ? null : $"{path}: no anyOf alternative matches";
        }

        if (schema.TryGetProperty("enum", out JsonElement values))
        {
            return values.EnumerateArray().Any(v => JsonElement.DeepEquals(v, value)) ? null : $"{path}: {value.GetRawText()} is not in the enum";
        }

        if (schema.TryGetProperty("const", out JsonElement constant))
        {
            return JsonElement.DeepEquals(constant, value) ? null : $"{path}: {value.GetRawText()} is not the const";
        }

        JsonElement type = schema.GetProperty("type");
        IEnumerable<string> types = type.ValueKind == JsonValueKind.Array
            ? type.EnumerateArray().Select(t => t.GetString()!)
            : [type.GetString()!];
        string? failure = null;
        foreach (string t in types)
        {
            failure = CheckType(value, t, schema, root, path);
            if (failure is null)
            {
                return null;
            }
        }

        return failure;
    }

    private static string? CheckType(JsonElement value, string type, JsonElement schema, JsonElement root, string path)
    {
        switch (type)
        {
            case "string" when value.ValueKind == JsonValueKind.String:
            case "number" when value.ValueKind == JsonValueKind.Number:
            case "boolean" when value.ValueKind is JsonValueKind.True or JsonValueKind.False:
            case "null" when value.ValueKind == JsonValueKind.Null:
                return null;
            case "integer" when value.ValueKind == JsonValueKind.Number:
                return value.GetRawText().IndexOfAny(['.', 'e', 'E']) < 0 ? null : $"{path}: {value.GetRawText()} is not an integer";
            case "array" when value.ValueKind == JsonValueKind.Array:
                if (!schema.TryGetProperty("items", out JsonElement items))
                {
                    return null;
                }

                int i = 0;
                foreach (JsonElement item in value.EnumerateArray())
                {
                    if (Check(item, items, root, $"{path}[{i++}]") is { } bad)
                    {
                        return bad;
                    }
                }

                return null;
            case "object" when value.ValueKind == JsonValueKind.Object:
                return CheckObject(value, schema, root, path);
            default:
                return $"{path}: {value.ValueKind} is not {type}";
        }
    }

    private static string? CheckObject(JsonElement value, JsonElement schema, JsonElement root, string path)
    {
        List<string> declared = schema.TryGetProperty("properties", out JsonElement properties)
            ? properties.EnumerateObject().Select(p => p.Name).ToList()
            : [];
        HashSet<string> required = schema.TryGetProperty("required", out JsonElement r)
            ? r.EnumerateArray().Select(n => n.GetString()!).ToHashSet()
            : [];
        int previous = -1;
        var seen = new HashSet<string>();
        foreach (JsonProperty property in value.EnumerateObject())
        {
            int position = declared.IndexOf(property.Name);
            if (position < 0)
            {
                return $"{path}: undeclared key '{property.Name}'";
            }

            if (position <= previous || !seen.Add(property.Name))
            {
                return $"{path}: key '{property.Name}' out of the schema's order";
            }

            previous = position;
            if (Check(property.Value, properties.GetProperty(property.Name), root, $"{path}.{property.Name}") is { } bad)
            {
                return bad;
            }
        }

        string? missing = required.FirstOrDefault(n => !seen.Contains(n));
        return missing is null ? null : $"{path}: required key '{missing}' missing";
    }

    private static JsonElement Resolve(JsonElement root, string pointer)
    {
        JsonElement target = root;
        foreach (string segment in pointer == "#" ? [] : pointer[2..].Split('/'))
        {
            target = target.GetProperty(segment);
        }

        return target;
    }
}
