using System.Text.Json;

namespace LlmServer.Bench.StructuredOutput;

/// <summary>
/// The schemas constrained decoding is measured on, each with a document a model could reply with: a flat record,
/// nested objects, a recursive tree, enum-heavy items and anyOf alternatives (the shapes the grammar tests cover),
/// and <see cref="LongText"/>, whose documents run as long as max_tokens lets them (for the throughput run).
/// Documents are compact, with free text inside their strings, as models trained on JSON write them.
/// </summary>
public static class BenchmarkSchemas
{
    public sealed record Case(string Name, string Schema, string Document)
    {
        public JsonElement SchemaElement => JsonDocument.Parse(Schema).RootElement;
    }

    /// <summary>One free string: a reply stays inside it until the token budget makes the grammar close it.</summary>
    public static readonly Case LongText = new("long-text",
        """{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}""",
        """{"text":"The committee met on Tuesday to review the quarterly figures, which showed steady growth in every region but one."}""");

    public static readonly IReadOnlyList<Case> All =
    [
        new("flat",
            """
            {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"},"score":{"type":"number"},
             "ok":{"type":"boolean"},"none":{"type":"null"}},
             "required":["name","age","score","ok","none"],"additionalProperties":false}
            """,
            """{"name":"Ada Lovelace, Countess of Lovelace","age":36,"score":97.25,"ok":true,"none":null}"""),
        new("nested",
            """
            {"type":"object","properties":{
               "person":{"type":"object","properties":{
                  "name":{"type":"string"},
                  "address":{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"integer"}},
                             "required":["street","zip"],"additionalProperties":false}},
                  "required":["name","address"],"additionalProperties":false},
               "tags":{"type":"array","items":{"type":"string"}}},
             "required":["person","tags"],"additionalProperties":false}
            """,
            """{"person":{"name":"Grace Brewster Murray Hopper","address":{"street":"1 Navy Yard Road, Arlington, Virginia","zip":22202}},"tags":["compiler","COBOL","rear admiral","computer science"]}"""),
        new("tree",
            """
            {"$defs":{"node":{"type":"object","properties":{"value":{"type":"integer"},
                "children":{"type":"array","items":{"$ref":"#/$defs/node"}}},
                "required":["value","children"],"additionalProperties":false}},
             "$ref":"#/$defs/node"}
            """,
            """{"value":1,"children":[{"value":2,"children":[{"value":4,"children":[]},{"value":5,"children":[]}]},{"value":3,"children":[{"value":6,"children":[{"value":7,"children":[]}]}]}]}"""),
        new("enums",
            """
            {"type":"object","properties":{"items":{"type":"array","items":{"type":"object","properties":{
               "color":{"type":"string","enum":["red","redish","rose","green","greenish","blue","navy","teal","cyan","black","white","gray"]},
               "size":{"enum":["S","M","L",1,2,null,true,{"w":1}]},
               "unit":{"const":"cm"}},
               "required":["color","size","unit"],"additionalProperties":false}}},
             "required":["items"],"additionalProperties":false}
            """,
            """{"items":[{"color":"greenish","size":"M","unit":"cm"},{"color":"navy","size":2,"unit":"cm"},{"color":"redish","size":{"w":1},"unit":"cm"},{"color":"white","size":null,"unit":"cm"}]}"""),
        new("anyof",
            """
            {"type":"object","properties":{"values":{"type":"array","items":{"anyOf":[
               {"type":"string"},{"type":"number"},
               {"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"],"additionalProperties":false},
               {"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string"}},"required":["kind","y"],"additionalProperties":false}]}}},
             "required":["values"],"additionalProperties":false}
            """,
            """{"values":["a note in free text",3.5,{"kind":"a","x":42},{"kind":"b","y":"the second variant"},-17]}"""),
    ];
}
