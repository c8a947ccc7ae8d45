using System.Text.Json;
using System.Text.Json.Nodes;

namespace LlmServer.Commands;

/// <summary>The JSONL files the offline commands read: one JSON value per non-blank line.</summary>
internal static class JsonLinesFile
{
    /// <summary>Each non-blank line read by <paramref name="read"/> (given the value and its 1-based line number).</summary>
    /// <param name="expected">What a line should be, for the error that names the first line that is not.</param>
    /// <exception cref="InvalidDataException">A line is not JSON, or <paramref name="read"/> cannot read it.</exception>
    public static List<T> Read<T>(string path, string expected, Func<JsonNode, int, T> read)
    {
        var items = new List<T>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            try
            {
                items.Add(read(JsonNode.Parse(line) ?? throw new InvalidDataException("null"), lineNumber));
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException or InvalidDataException or FormatException or NullReferenceException)
            {
                throw new InvalidDataException($"{path}: line {lineNumber}: {expected} ({e.Message})", e);
            }
        }
        return items;
    }
}
