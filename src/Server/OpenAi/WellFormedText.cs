using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Unicode;

namespace LlmServer.OpenAi;

/// <summary>
/// A request string that is not Unicode text: a lone surrogate escape (<c>"\ud800"</c>, what a
/// JavaScript app sends when it cuts text inside an emoji) or bytes that are not UTF-8.
/// <see cref="InnerPath"/> says where inside a free-form value (a JsonElement) it sits.
/// </summary>
public sealed class MalformedTextException(string innerPath = "")
    : JsonException("The string is not valid Unicode text.")
{
    public string InnerPath { get; } = innerPath;
}

/// <summary>
/// System.Text.Json reads a malformed string without complaint and throws only when the string is
/// asked for: during binding for a string property, but later, anywhere, for a string inside a
/// JsonElement (prompt, content, stop), where it surfaced as a 500. Checking every string as the
/// body is read gives one answer for all fields: a 400 naming the field.
/// </summary>
public sealed class WellFormedStringConverter : JsonConverter<string>
{
    public override string Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            // No message: the serializer writes its own with the path, and the caller names the expected type.
            throw new JsonException();
        }
        return ReadText(ref reader);
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

    public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        ReadText(ref reader);

    public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(value);

    private static string ReadText(ref Utf8JsonReader reader)
    {
        try
        {
            // A long string is decoded by LargeJsonString, so it leaves no body-sized array in ArrayPool.Shared.
            return RawLength(ref reader) < LargeJsonString.Threshold ? reader.GetString()!
                : reader.HasValueSequence ? LargeJsonString.Decode(reader.ValueSequence.ToArray()) : LargeJsonString.Decode(reader.ValueSpan);
        }
        catch (InvalidOperationException)
        {
            throw new MalformedTextException();
        }
    }

    internal static long RawLength(ref Utf8JsonReader reader) => reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
}

/// <summary>Checks every string and property name inside a free-form value before it becomes a JsonElement.</summary>
public sealed class WellFormedJsonElementConverter : JsonConverter<JsonElement>
{
    public override JsonElement Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (FindMalformedText(reader) is { } innerPath)
        {
            throw new MalformedTextException(innerPath);
        }
        return JsonElement.ParseValue(ref reader);
    }

    public override void Write(Utf8JsonWriter writer, JsonElement value, JsonSerializerOptions options) => value.WriteTo(writer);

    /// <summary>Walks a copy of the reader over the value; returns where the first malformed string is (".a[2]"), or null.</summary>
    private static string? FindMalformedText(Utf8JsonReader reader)
    {
        // The serializer hands a converter the whole value buffered, so the copy can read to its end.
        var containers = new List<(bool IsArray, int Index, string? Name)>();
        int startDepth = reader.CurrentDepth;
        while (true)
        {
            JsonTokenType token = reader.TokenType;
            if (containers.Count > 0 && containers[^1].IsArray && token is not (JsonTokenType.EndArray or JsonTokenType.EndObject))
            {
                containers[^1] = containers[^1] with { Index = containers[^1].Index + 1 };
            }
            switch (token)
            {
                case JsonTokenType.PropertyName when !IsWellFormed(ref reader):
                    return PathOf(containers, leaf: false);
                case JsonTokenType.PropertyName:
                    containers[^1] = containers[^1] with { Name = reader.GetString() };
                    break;
                case JsonTokenType.String when !IsWellFormed(ref reader):
                    return PathOf(containers, leaf: true);
                case JsonTokenType.StartObject:
                    containers.Add((false, -1, null));
                    break;
                case JsonTokenType.StartArray:
                    containers.Add((true, -1, null));
                    break;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    containers.RemoveAt(containers.Count - 1);
                    break;
            }
            if (reader.CurrentDepth == startDepth && token is not (JsonTokenType.StartObject or JsonTokenType.StartArray))
            {
                return null;
            }
            reader.Read();
        }
    }

    /// <param name="leaf">Whether the innermost container's current member is part of the path (a string value) or not (a bad property name).</param>
    private static string PathOf(List<(bool IsArray, int Index, string? Name)> containers, bool leaf)
    {
        var path = new StringBuilder();
        for (int i = 0; i < containers.Count; i++)
        {
            if (i == containers.Count - 1 && !leaf)
            {
                break;
            }
            (bool isArray, int index, string? name) = containers[i];
            path.Append(isArray ? $"[{index}]" : $".{name}");
        }
        return path.ToString();
    }

    private static bool IsWellFormed(ref Utf8JsonReader reader)
    {
        if (!reader.ValueIsEscaped && !reader.HasValueSequence)
        {
            return Utf8.IsValid(reader.ValueSpan);
        }
        // Unescaping is where a lone \uD800 shows; LargeJsonString checks the escapes without decoding
        // anything, so the value is decoded once, when it is read.
        return reader.HasValueSequence ? LargeJsonString.IsWellFormed(reader.ValueSequence.ToArray()) : LargeJsonString.IsWellFormed(reader.ValueSpan);
    }
}
