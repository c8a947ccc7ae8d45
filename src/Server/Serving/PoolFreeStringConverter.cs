using System.Buffers;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmServer.Serving;

/// <summary>
/// System.Text.Json's string handling, except that a string longer than
/// <see cref="LargeJsonString.Threshold"/> is decoded by <see cref="LargeJsonString"/>, so that a
/// long escaped string in a request leaves no body-sized array in <c>ArrayPool.Shared</c>.
/// </summary>
public sealed class PoolFreeStringConverter : JsonConverter<string>
{
    public override string? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        long length = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
        if (reader.TokenType != JsonTokenType.String || length < LargeJsonString.Threshold)
        {
            // What the built-in converter does, errors included.
            return reader.GetString();
        }
        try
        {
            return reader.HasValueSequence ? LargeJsonString.Decode(reader.ValueSequence.ToArray()) : LargeJsonString.Decode(reader.ValueSpan);
        }
        catch (InvalidOperationException e)
        {
            // The built-in converter's decoding errors reach the caller as a JsonException with a path.
            throw new JsonException(e.Message, e);
        }
    }

    public override void Write(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WriteStringValue(value);

    public override string ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => reader.GetString()!;

    public override void WriteAsPropertyName(Utf8JsonWriter writer, string value, JsonSerializerOptions options) => writer.WritePropertyName(value);
}
