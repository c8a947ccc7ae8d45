using System.Text.Json;
using System.Text.Json.Serialization;

namespace LlmServer.OpenAi;

/// <summary>
/// <c>usage</c> on a stream chunk, as OpenAI sends it: the key is left out unless the client asked
/// for usage (<c>stream_options.include_usage</c>); then every chunk but the last says
/// <c>"usage": null</c> and the last one carries the totals. A chunk built with <see cref="Pending"/>
/// writes that null; a C# null leaves the key out (the wire options write no nulls).
/// </summary>
public sealed class StreamChunkUsage : JsonConverter<Usage>
{
    /// <summary>"Asked for, not known until the last chunk"; written as null, never as its numbers.</summary>
    public static readonly Usage Pending = new(-1, -1, -1);

    public override Usage Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        throw new NotSupportedException("Stream chunks are only written.");

    public override void Write(Utf8JsonWriter writer, Usage value, JsonSerializerOptions options)
    {
        if (ReferenceEquals(value, Pending))
        {
            writer.WriteNullValue();
        }
        else
        {
            // The type's own contract: this converter is on the chunk's property, not on Usage.
            JsonSerializer.Serialize(writer, value, options);
        }
    }
}
