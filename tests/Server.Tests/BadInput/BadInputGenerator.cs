using System.Text;
using System.Text.Json.Nodes;

namespace LlmServer.Tests.BadInput;

/// <summary>The JSON type a request field takes; a value of any other type is a client error.</summary>
public enum FieldKind { String, Integer, Number, Boolean, Object, Array, StringOrArray }

/// <summary>A JSON endpoint: a valid body, and the typed fields a mutation may break.</summary>
/// <param name="TextFields">Fields where text that is not text (invalid UTF-8, a lone surrogate) or a long word goes.</param>
/// <param name="RefusesLongText">The text fields where a 1 MB word must be refused: it cannot fit the context, or names nothing that exists.</param>
public sealed record JsonEndpoint(string Path, string Template, IReadOnlyDictionary<string, FieldKind> Fields, IReadOnlyList<string> TextFields,
    IReadOnlyList<string> RefusesLongText);

/// <summary>
/// Malformed requests made from valid ones: each field given a value of every wrong JSON type,
/// out-of-range numbers, unknown fields, invalid UTF-8 and lone surrogates in text, bodies cut
/// short, random bytes, deep nesting, long words, and the wrong content type. Seeded, so a
/// failure names a case that can be run again.
/// </summary>
public sealed class BadInputGenerator(int seed)
{
    private readonly Random _random = new(seed);

    private const string Marker = "@@MARK@@";

    /// <summary>A value of each JSON type but the field's own; null is left out, as it means "not set".</summary>
    private static IEnumerable<string> WrongValues(FieldKind kind)
    {
        string[] all = ["\"x\"", "5", "1.5", "true", "{}", "[1]", "{\"a\":[]}"];
        return kind switch
        {
            FieldKind.String => all.Where(v => !v.StartsWith('"')),
            FieldKind.Integer => all.Where(v => v != "5").Append("99999999999999999999").Append("1e30"),
            FieldKind.Number => all.Where(v => v is not ("5" or "1.5")),
            FieldKind.Boolean => all.Where(v => v != "true").Append("\"true\"").Append("0"),
            FieldKind.Object => all.Where(v => !v.StartsWith('{')),
            FieldKind.Array => all.Where(v => !v.StartsWith('[')),
            FieldKind.StringOrArray => all.Where(v => !v.StartsWith('"') && !v.StartsWith('[')),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    /// <summary>Values out of range for numeric fields: each one is refused, whatever the field.</summary>
    private static readonly IReadOnlyDictionary<string, string[]> OutOfRange = new Dictionary<string, string[]>
    {
        ["max_tokens"] = ["0", "-1", "2147483647", "-2147483649"],
        ["max_completion_tokens"] = ["0", "-3", "2147483647"],
        ["n"] = ["0", "-1", "1000000", "2147483648"],
        ["temperature"] = ["-0.5", "2.5", "1e308", "-1e308"],
        ["top_p"] = ["0", "1.5", "-1"],
        ["presence_penalty"] = ["2.5", "-1e308"],
        ["frequency_penalty"] = ["-2.5", "1e308"],
        ["top_k"] = ["-2", "-2147483649"],
        ["min_tokens"] = ["-5", "100000"],
        ["top_logprobs"] = ["-1", "1000000"],
        ["logprobs"] = ["-1", "1000000"],
        ["seed"] = ["1e30", "99999999999999999999"],
    };

    public IEnumerable<MalformedRequest> For(JsonEndpoint endpoint)
    {
        foreach ((string field, FieldKind kind) in endpoint.Fields)
        {
            foreach (string value in WrongValues(kind))
            {
                yield return MalformedRequest.Json($"{field} of the wrong type", endpoint.Path, WithRaw(endpoint.Template, field, value));
            }
            if (OutOfRange.TryGetValue(field, out string[]? values))
            {
                foreach (string value in values)
                {
                    yield return MalformedRequest.Json($"{field} out of range", endpoint.Path, WithRaw(endpoint.Template, field, value));
                }
            }
        }

        for (int i = 0; i < 5; i++)
        {
            string name = "x_" + RandomWord(_random.Next(3, 12));
            yield return MalformedRequest.Json("an unknown field", endpoint.Path, WithRaw(endpoint.Template, name, "1"));
        }

        // Text that is not text: a 400 naming the field, or the replacement character; never a 500.
        byte[][] invalidUtf8 = [[0xFF], [0xC3, 0x28], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]];
        string[] badEscapes = ["\\ud800", "\\udc00", "\\ud83d", "\\udfff\\ud800"];
        foreach (string field in endpoint.TextFields)
        {
            foreach (byte[] bytes in invalidUtf8)
            {
                yield return MalformedRequest.Bytes($"invalid UTF-8 {Convert.ToHexString(bytes)} in {field}", endpoint.Path,
                    Splice(WithText(endpoint.Template, field, Marker), [.. "a"u8, .. bytes, .. "b"u8]), expect: Expectation.NoServerError);
            }
            foreach (string escape in badEscapes)
            {
                yield return MalformedRequest.Bytes($"lone surrogate {escape} in {field}", endpoint.Path,
                    Splice(WithText(endpoint.Template, field, Marker), Encoding.ASCII.GetBytes($"a{escape}b")), expect: Expectation.NoServerError);
            }
        }

        byte[] template = Encoding.UTF8.GetBytes(endpoint.Template);
        for (int i = 0; i < 12; i++)
        {
            int cut = i == 0 ? 0 : _random.Next(1, template.Length);
            yield return MalformedRequest.Bytes($"body cut after {cut} bytes", endpoint.Path, template[..cut]);
        }
        for (int i = 0; i < 12; i++)
        {
            var junk = new byte[_random.Next(1, 300)];
            _random.NextBytes(junk);
            junk[0] = (byte)"{[\"x\u00ff"[_random.Next(5)];   // mostly starts like JSON, so the parser goes further in
            yield return MalformedRequest.Bytes("random bytes", endpoint.Path, junk);
        }
        foreach (string json in new[] { "[]", "5", "\"text\"", "null", "true", "{\"a\":1}{\"b\":2}", "{\"model\":\"x\",}", "{'model':'x'}" })
        {
            yield return MalformedRequest.Json($"not one JSON object: {json}", endpoint.Path, json);
        }
        yield return MalformedRequest.Json("arrays nested 10,000 deep", endpoint.Path,
            WithRaw(endpoint.Template, endpoint.Fields.Keys.First(), new string('[', 10_000) + new string(']', 10_000)));
        yield return MalformedRequest.Json("objects nested 5,000 deep", endpoint.Path,
            string.Concat(Enumerable.Repeat("{\"a\":", 5_000)) + "1" + new string('}', 5_000));
        yield return MalformedRequest.Bytes("a UTF-16 body", endpoint.Path, Encoding.Unicode.GetBytes(endpoint.Template));

        foreach (string contentType in new[] { "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml" })
        {
            yield return MalformedRequest.Bytes($"Content-Type {contentType}", endpoint.Path, template, contentType);
        }

        foreach (string field in endpoint.TextFields)
        {
            Expectation longText = endpoint.RefusesLongText.Contains(field) ? Expectation.ClientError : Expectation.NoServerError;
            yield return MalformedRequest.Json($"a 1 MB word in {field}", endpoint.Path, WithText(endpoint.Template, field, new string('a', 1 << 20)), longText);
            yield return MalformedRequest.Json($"300,000 CJK characters in {field}", endpoint.Path, WithText(endpoint.Template, field, RandomCjk(300_000)), longText);
        }
    }

    /// <summary>The template with one field (a top-level name or a path like messages[0].content) set to raw JSON.</summary>
    public static string WithRaw(string template, string field, string rawJson) =>
        Encoding.UTF8.GetString(Splice(WithText(template, field, Marker), Encoding.UTF8.GetBytes(rawJson), quoted: true));

    private static string WithText(string template, string field, string text)
    {
        JsonNode root = JsonNode.Parse(template)!;
        JsonNode parent = root;
        string[] steps = field.Split('.');
        foreach (string step in steps[..^1])
        {
            parent = Step(parent, step);
        }
        string last = steps[^1];
        int bracket = last.IndexOf('[');
        if (bracket >= 0)
        {
            Step(parent, last[..bracket]).AsArray()[int.Parse(last[(bracket + 1)..^1])] = text;
        }
        else
        {
            parent.AsObject()[last] = text;
        }
        return root.ToJsonString();
    }

    private static JsonNode Step(JsonNode node, string step)
    {
        int bracket = step.IndexOf('[');
        return bracket < 0 ? node[step]! : node[step[..bracket]]![int.Parse(step[(bracket + 1)..^1])]!;
    }

    /// <summary>Puts bytes where the marker is: inside its quotes, or in place of the quoted marker.</summary>
    private static byte[] Splice(string json, byte[] replacement, bool quoted = false)
    {
        string target = quoted ? $"\"{Marker}\"" : Marker;
        int at = json.IndexOf(target, StringComparison.Ordinal);
        byte[] before = Encoding.UTF8.GetBytes(json[..at]);
        byte[] after = Encoding.UTF8.GetBytes(json[(at + target.Length)..]);
        return [.. before, .. replacement, .. after];
    }

    private string RandomWord(int length)
    {
        var word = new char[length];
        for (int i = 0; i < length; i++)
        {
            word[i] = (char)('a' + _random.Next(26));
        }
        return new string(word);
    }

    private string RandomCjk(int length)
    {
        var text = new char[length];
        for (int i = 0; i < length; i++)
        {
            text[i] = (char)_random.Next(0x4E00, 0x9FA6);
        }
        return new string(text);
    }
}
