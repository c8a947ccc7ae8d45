using System.Text;
using LlmServer.Inference.StructuredOutput;

namespace LlmServer.Inference.Tests.StructuredOutput;

/// <summary>Byte-by-byte acceptance: valid documents pass and can end, invalid ones fail at their first bad byte.</summary>
public sealed class GrammarMatcherTests
{
    public static TheoryData<string, string> ValidDocuments => new()
    {
        { "flat", """{"name":"Ann","age":-42,"score":3.5e+2,"ok":true,"none":null}""" },
        { "flat", """{ "name": "a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "age": 0, "score": -0.25, "ok": false, "none": null }""" },
        { "flat", "{\"name\":\"h\u00e9llo \u6771\u4eac \U0001F600\",\"age\":123456789012345,\"score\":0,\"ok\":true,\"none\":null}" },
        { "nested", """{"person":{"name":"B","address":{"street":"Main","zip":12345}},"tags":["x","y"]}""" },
        { "nested", """{"person":{"name":"B","address":{"street":"","zip":1}},"tags":[]}""" },
        { "tree", """{"value":1,"children":[{"value":2,"children":[]},{"value":3,"children":[{"value":4,"children":[]}]}]}""" },
        { "list", """{"v":"a","next":{"v":"b","next":{"v":"c","next":null}}}""" },
        { "enums", """{"color":"redish","size":null,"unit":"cm"}""" },
        { "enums", """{"color":"red","size":{"w":1},"unit":"cm"}""" },
        { "enums", """{"color":"gray","size":2,"unit":"cm"}""" },
        { "anyof", """{"value":"text"}""" },
        { "anyof", """{"value":1.5}""" },
        { "anyof", """{"value":{"kind":"b","y":"z"}}""" },
        { "anyof", """{"value":{"kind":"a","x":7}}""" },
        { "arrays", """{"matrix":[[1,2.5],[],[-3e5]],"names":["a"],"anything":[1,"two",null,{"k":[true,false]},[]]}""" },
        { "nullable", """{"nick":null,"count":3}""" },
        { "nullable", """{"nick":"n","count":null}""" },
        { "optional", """{"b":"only"}""" },
        { "optional", """{"a":1,"b":"x","c":true}""" },
        { "optional", """{"b":"x","c":false}""" },
        { "unicode", "{\"città\":\"東京\",\"note\":\"ok\"}" },
        { "integer-root", "-17" },
        { "integer-root", "0" },
    };

    // '|' marks the first byte the matcher must refuse; it is not part of the document.
    public static TheoryData<string, string> InvalidDocuments => new()
    {
        { "flat", """{"name":"Ann","age":4|.5""" },                   // integer with a fraction
        { "flat", """{"|age":1""" },                                   // keys in the schema's order only
        { "flat", """{"name":"Ann","|extra":1""" },                   // no undeclared key
        { "flat", """{"name":"A","age":0|1""" },                       // no leading zero
        { "flat", """{"name":"A","age":1,"score":1.|e5""" },           // a fraction needs a digit
        { "flat", """{"name":"A","age":1,"score":1,"ok":tru|,""" },
        { "flat", """{"name":"a\|x""" },                              // unknown escape
        { "flat", """{"name":"\ud|c00""" },                           // a lone low surrogate, at its second digit
        { "flat", """{"name":"\ud800|x""" },                          // a high surrogate needs its low one
        { "flat", "{\"name\":\"a|\tb\"" },                            // a raw control character
        { "flat", "{\"name\":  | \"" },                                // whitespace runs are bounded
        { "nested", """{"person":{"name":"B","address":{"street":"M"|}""" }, // required zip missing
        { "nested", """{"person":{"name":"B","address":{"street":"M","zip":1}},"tags":[|1]""" },
        { "tree", """{"value":1,"children":[{"value":2|}""" },
        { "list", """{"v":"a","next":{"v":"b","next":|1""" },
        { "enums", """{"color":"red|x""" },
        { "enums", """{"color":"red","size":|3""" },
        { "enums", """{"color":"red","size":"S","unit":"|mm""" },
        { "anyof", """{"value":{"kind":"|c""" },
        { "anyof", """{"value":{"kind":"a","|y""" },
        { "arrays", """{"matrix":[|1]""" },
        { "optional", """{"a":1|}""" },                                // b is required
        { "optional", """{"|c":true,"b""" },                           // c cannot come before b
        { "integer-root", "1|.0" },
        { "integer-root", "| 1" },                                     // nothing around the root
    };

    [Theory]
    [MemberData(nameof(ValidDocuments))]
    public void ValidDocument_IsAcceptedByteByByte_AndCanEnd(string schema, string document)
    {
        var matcher = new GrammarMatcher(JsonGrammar.FromSchema(TestSchemas.Parse(schema)));
        byte[] bytes = Encoding.UTF8.GetBytes(document);

        for (int i = 0; i < bytes.Length; i++)
        {
            // A root number may end after any digit; everything else here is an object, open until its '}'.
            Assert.True(!matcher.CanEnd || bytes[0] != (byte)'{', $"could end before byte {i}");
            Assert.True(matcher.TryAdvance(bytes[i]), $"refused byte {i} ('{(char)bytes[i]}') of {document}");
        }

        Assert.True(matcher.CanEnd);
    }

    [Theory]
    [MemberData(nameof(InvalidDocuments))]
    public void InvalidDocument_IsRefusedAtItsFirstBadByte(string schema, string marked)
    {
        var matcher = new GrammarMatcher(JsonGrammar.FromSchema(TestSchemas.Parse(schema)));
        int badIndex = Encoding.UTF8.GetByteCount(marked[..marked.IndexOf('|')]);
        byte[] bytes = Encoding.UTF8.GetBytes(marked.Remove(marked.IndexOf('|'), 1));

        for (int i = 0; i < badIndex; i++)
        {
            Assert.True(matcher.TryAdvance(bytes[i]), $"refused byte {i} ('{(char)bytes[i]}'), before the bad one");
        }

        Assert.False(matcher.TryAdvance(bytes[badIndex]), $"accepted byte {badIndex} ('{(char)bytes[badIndex]}')");
        // A refused byte leaves the matcher where it was: the good continuation is still accepted.
        Assert.Contains(Enumerable.Range(0, 256), b => matcher.TryAdvance((byte)b));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("""{"a":{"b":[1,-2.5e3,"x",true,false,null,{}]},"a":"dup"}""")]
    [InlineData("{ \"k\" : [ ] }")]
    public void JsonObjectGrammar_AcceptsAnyObject(string document)
    {
        var matcher = new GrammarMatcher(JsonGrammar.AnyObject);

        Assert.True(matcher.TryAdvance(Encoding.UTF8.GetBytes(document)));
        Assert.True(matcher.CanEnd);
        Assert.True(matcher.IsFinished);
    }

    [Theory]
    [InlineData("[]")]
    [InlineData("\"s\"")]
    [InlineData("1")]
    [InlineData("{\"a\"}")]
    [InlineData("{\"a\":1,}")]
    public void JsonObjectGrammar_RefusesWhatIsNotAnObject(string document)
    {
        var matcher = new GrammarMatcher(JsonGrammar.AnyObject);

        Assert.False(matcher.TryAdvance(Encoding.UTF8.GetBytes(document)) && matcher.CanEnd);
    }

    [Fact]
    public void InvalidUtf8_IsRefused()
    {
        var matcher = new GrammarMatcher(JsonGrammar.AnyObject);
        Assert.True(matcher.TryAdvance("{\"k\":\""u8));
        MatcherState inString = matcher.Save();

        // Overlong "/", an encoded surrogate (U+D800), above U+10FFFF, a stray continuation byte, a missing one.
        byte[][] invalid = [[0xC0, 0xAF], [0xED, 0xA0], [0xF4, 0x90], [0x80], [0xC3, (byte)'"']];
        foreach (byte[] sequence in invalid)
        {
            matcher.Restore(inString);
            Assert.False(matcher.TryAdvance(sequence), Convert.ToHexString(sequence));
        }

        matcher.Restore(inString);
        Assert.True(matcher.TryAdvance([0xF0, 0x9F, 0x98, 0x80, (byte)'"', (byte)'}']));
        Assert.True(matcher.CanEnd);
    }

    [Fact]
    public void Restore_ReturnsToTheSavedState_WhateverHappenedSince()
    {
        var matcher = new GrammarMatcher(JsonGrammar.FromSchema(TestSchemas.Parse("enums")));
        Assert.True(matcher.TryAdvance("{\"color\":\"re"u8));
        MatcherState saved = matcher.Save();

        Assert.True(matcher.TryAdvance("dish\",\"size\":1,\"unit\":\"cm\"}"u8));
        Assert.True(matcher.IsFinished);
        matcher.Restore(saved);

        Assert.False(matcher.TryAdvance((byte)'x'));
        Assert.True(matcher.TryAdvance("d\",\"size\":true,\"unit\":\"cm\"}"u8));
        Assert.True(matcher.CanEnd);
    }

    [Fact]
    public void Numbers_AreBoundedInLength()
    {
        var matcher = new GrammarMatcher(JsonGrammar.FromSchema(TestSchemas.Parse("integer-root")));

        Assert.True(matcher.TryAdvance(Encoding.ASCII.GetBytes(new string('9', 15))));
        Assert.False(matcher.TryAdvance((byte)'9'));
        Assert.True(matcher.CanEnd);
    }
}
