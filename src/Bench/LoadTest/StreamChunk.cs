using System.Text.Json;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// What the benchmark needs from one streamed <c>data: {...}</c> event: the generated text (completions'
/// <c>choices[0].text</c> or chat's <c>choices[0].delta.content</c>), the usage if the event carries it,
/// or the error a server reports after the stream has started.
/// </summary>
internal readonly record struct StreamChunk(string? Text, int? PromptTokens, int? CompletionTokens, string? Error)
{
    public static StreamChunk Parse(string json)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json);
        }
        catch (JsonException)
        {
            return Malformed(json);
        }
        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                return Malformed(json);
            }
            if (ErrorMessage(root) is { } error)
            {
                return new StreamChunk(null, null, null, error);
            }
            int? promptTokens = null, completionTokens = null;
            if (root.TryGetProperty("usage", out JsonElement usage) && usage.ValueKind == JsonValueKind.Object)
            {
                promptTokens = IntOrNull(usage, "prompt_tokens");
                completionTokens = IntOrNull(usage, "completion_tokens");
            }
            return new StreamChunk(FirstChoiceText(root), promptTokens, completionTokens, null);
        }
    }

    /// <summary>
    /// The message of an OpenAI error body, <c>{"error":{"message":...}}</c>, also accepting a bare string
    /// error and vLLM's older <c>{"object":"error","message":...}</c>; null when the body is not an error.
    /// </summary>
    public static string? ErrorMessage(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        if (root.TryGetProperty("error", out JsonElement error))
        {
            return error.ValueKind switch
            {
                JsonValueKind.Object when error.TryGetProperty("message", out JsonElement message) && message.ValueKind == JsonValueKind.String
                    => message.GetString(),
                JsonValueKind.String => error.GetString(),
                JsonValueKind.Null => null,
                _ => error.GetRawText(),
            };
        }
        if (root.TryGetProperty("object", out JsonElement kind) && kind.ValueKind == JsonValueKind.String && kind.GetString() == "error")
        {
            return root.TryGetProperty("message", out JsonElement message) ? message.ToString() : root.GetRawText();
        }
        return null;
    }

    private static StreamChunk Malformed(string json) => new(null, null, null, $"malformed stream event: {Shorten(json)}");

    internal static string Shorten(string text) => text.Length <= 200 ? text : text[..200] + "...";

    private static string? FirstChoiceText(JsonElement root)
    {
        if (!root.TryGetProperty("choices", out JsonElement choices) || choices.ValueKind != JsonValueKind.Array || choices.GetArrayLength() == 0)
        {
            return null;
        }
        JsonElement choice = choices[0];
        if (choice.TryGetProperty("text", out JsonElement text) && text.ValueKind == JsonValueKind.String)
        {
            return text.GetString();
        }
        if (choice.TryGetProperty("delta", out JsonElement delta) && delta.ValueKind == JsonValueKind.Object
            && delta.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String)
        {
            return content.GetString();
        }
        return null;
    }

    private static int? IntOrNull(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int number)
            ? number
            : null;
}
