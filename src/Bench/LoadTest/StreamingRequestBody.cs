using System.Text.Json;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// The JSON body of one benchmark request, serialized before the run starts so that building it is not
/// part of any measured latency.
/// </summary>
internal static class StreamingRequestBody
{
    public static byte[] Serialize(ServingBenchmarkOptions options, string model, BenchmarkPrompt prompt)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("model", model);
            if (options.IsChat)
            {
                json.WriteStartArray("messages");
                json.WriteStartObject();
                json.WriteString("role", "user");
                // Chat has no token-id form: RandomPromptGenerator always gives chat prompts as text.
                json.WriteString("content", prompt.Text);
                json.WriteEndObject();
                json.WriteEndArray();
            }
            else if (prompt.TokenIds is { } ids)
            {
                json.WriteStartArray("prompt");
                foreach (int id in ids)
                {
                    json.WriteNumberValue(id);
                }
                json.WriteEndArray();
            }
            else
            {
                json.WriteString("prompt", prompt.Text);
            }
            json.WriteNumber("max_tokens", options.OutputLength);
            // Without it a model may stop early at end-of-text and the output length would vary per request.
            json.WriteBoolean("ignore_eos", true);
            json.WriteNumber("temperature", options.Temperature);
            json.WriteBoolean("stream", true);
            json.WriteStartObject("stream_options");
            json.WriteBoolean("include_usage", true);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return buffer.ToArray();
    }
}
