using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmServer.Tests.ToolCalling;

/// <summary>Checks a value against the strict-mode schemas the tool tests use (object, enum, integer, number, boolean).</summary>
internal static class SchemaCheck
{
    public static void AssertValid(JsonObject schema, JsonElement value, string path)
    {
        if (schema["enum"] is JsonArray values)
        {
            Assert.True(values.Any(v => JsonNode.DeepEquals(v, JsonNode.Parse(value.GetRawText()))), $"{path}: {value} is not one of {values.ToJsonString()}");
            return;
        }
        switch (schema["type"]!.GetValue<string>())
        {
            case "object":
                Assert.True(value.ValueKind == JsonValueKind.Object, $"{path}: {value} is not an object");
                JsonObject properties = schema["properties"]!.AsObject();
                string[] keys = value.EnumerateObject().Select(p => p.Name).ToArray();
                Assert.True(keys.Length == keys.Distinct().Count(), $"{path}: a key repeats in {value}");
                Assert.True(keys.All(properties.ContainsKey), $"{path}: {value} has a key the schema does not");
                foreach (string required in schema["required"]!.AsArray().Select(r => r!.GetValue<string>()))
                {
                    Assert.True(value.TryGetProperty(required, out JsonElement property), $"{path}: {value} lacks {required}");
                    AssertValid(properties[required]!.AsObject(), property, $"{path}.{required}");
                }
                break;
            case "integer":
                Assert.True(value.ValueKind == JsonValueKind.Number && !value.GetRawText().Contains('.') && !value.GetRawText().Contains('e', StringComparison.OrdinalIgnoreCase),
                    $"{path}: {value} is not an integer");
                break;
            case "number":
                Assert.True(value.ValueKind == JsonValueKind.Number, $"{path}: {value} is not a number");
                break;
            case "boolean":
                Assert.True(value.ValueKind is JsonValueKind.True or JsonValueKind.False, $"{path}: {value} is not a boolean");
                break;
            default:
                throw new InvalidOperationException($"{path}: the check does not know {schema["type"]}");
        }
    }
}
