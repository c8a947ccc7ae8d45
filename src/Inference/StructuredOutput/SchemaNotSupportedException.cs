namespace LlmServer.Inference.StructuredOutput;

/// <summary>
/// A JSON Schema uses something outside the strict-mode subset the grammar compiler supports. The API turns it
/// into a 400, so the message names the keyword and where it sits, as a client needs to fix its schema.
/// </summary>
public sealed class SchemaNotSupportedException : Exception
{
    public SchemaNotSupportedException(string keyword, string path, string reason)
        : base($"JSON Schema keyword '{keyword}' at {path} is not supported: {reason}.")
    {
        Keyword = keyword;
        Path = path;
    }

    /// <summary>The offending keyword, as written in the schema.</summary>
    public string Keyword { get; }

    /// <summary>Where the schema holding the keyword sits, as a JSON path from the root (<c>$</c>).</summary>
    public string Path { get; }
}
