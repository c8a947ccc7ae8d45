using System.Text.Json;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>The schemas the matcher is tested on: nested, recursive, enum-heavy, anyOf, arrays, optional keys.</summary>
internal static class TestSchemas
{
    public static readonly Dictionary<string, string> ByName = new()
    {
        ["flat"] = """
            {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"score":{"type":"number"},
             "ok":{"type":"boolean"},"none":{"type":"null"}},
             "required":["name","age","score","ok","none"],"additionalProperties":false}
            """,
        ["nested"] = """
            {"type":"object","properties":{
               "person":{"type":"object","properties":{
                  "name":{"type":"string"},
                  "address":{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"integer"}},
                             "required":["street","zip"],"additionalProperties":false}},
                  "required":["name","address"],"additionalProperties":false},
               "tags":{"type":"array","items":{"type":"string"}}},
             "required":["person","tags"],"additionalProperties":false}
            """,
        ["tree"] = """
            {"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},
                "children":{"type":"array","items":{"$ref":"#/$defs/node"}}},
                "required":["value","children"],"additionalProperties":false}},
             "$ref":"#/$defs/node"}
            """,
        ["list"] = """
            {"type":"object","properties":{"v":{"type":"string"},"next":{"anyOf":[{"$ref":"#"},{"type":"null"}]}},
             "required":["v","next"],"additionalProperties":false}
            """,
        ["enums"] = """
            {"type":"object","properties":{
               "color":{"type":"string","enum":["red","redish","rose","green","greenish","blue","navy","teal","cyan","black","white","gray"]},
               "size":{"enum":["S","M","L",1,2,null,true,{"w":1}]},
               "unit":{"const":"cm"}},
             "required":["color","size","unit"],"additionalProperties":false}
            """,
        ["anyof"] = """
            {"type":"object","properties":{"value":{"anyOf":[
               {"type":"string"},{"type":"number"},
               {"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"],"additionalProperties":false},
               {"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string"}},"required":["kind","y"],"additionalProperties":false}]}},
             "required":["value"],"additionalProperties":false}
            """,
        ["arrays"] = """
            {"type":"object","properties":{"matrix":{"type":"array","items":{"type":"array","items":{"type":"number"}}},
               "names":{"type":"array","items":{"type":"string"}},"anything":{"type":"array"}},
             "required":["matrix","names","anything"],"additionalProperties":false}
            """,
        ["nullable"] = """
            {"type":"object","properties":{"nick":{"type":["string","null"]},"count":{"type":["integer","null"]}},
             "required":["nick","count"],"additionalProperties":false}
            """,
        ["optional"] = """
            {"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"boolean"}},
             "required":["b"],"additionalProperties":false}
            """,
        ["unicode"] = """
            {"type":"object","properties":{"città":{"enum":["Zürich","東京"]},"note":{"type":"string"}},
             "required":["città","note"],"additionalProperties":false}
            """,
        ["integer-root"] = """{"type":"integer"}""",
    };

    public static JsonElement Parse(string name) => JsonDocument.Parse(ByName[name]).RootElement;
}
