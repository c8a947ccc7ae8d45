using System.Text;

namespace LlmServer.Tests.BadInput;

/// <summary>What the server must answer to one generated request.</summary>
public enum Expectation
{
    /// <summary>Invalid by construction: a 4xx in OpenAI's error shape.</summary>
    ClientError,
    /// <summary>May be valid or not (a replaced invalid character, say): never a 5xx, and any 4xx in OpenAI's shape.</summary>
    NoServerError,
    /// <summary>Refused by Kestrel while it parses the request line or headers, before any middleware can write a body: a bare 4xx.</summary>
    RefusedByKestrel,
}

/// <summary>One generated request: raw bytes under a content type, so it can be anything a broken client sends.</summary>
public sealed record MalformedRequest(string Description, HttpMethod Method, string Path, byte[]? Body, string? ContentType, Expectation Expect)
{
    public static MalformedRequest Json(string description, string path, string json, Expectation expect = Expectation.ClientError) =>
        new(description, HttpMethod.Post, path, Encoding.UTF8.GetBytes(json), "application/json", expect);

    public static MalformedRequest Bytes(string description, string path, byte[] body, string? contentType = "application/json",
        Expectation expect = Expectation.ClientError) =>
        new(description, HttpMethod.Post, path, body, contentType, expect);

    public static MalformedRequest Get(string description, string path, Expectation expect = Expectation.ClientError) =>
        new(description, HttpMethod.Get, path, null, null, expect);

    public override string ToString()
    {
        string body = Body is null ? "" : Encoding.UTF8.GetString(Body, 0, Math.Min(Body.Length, 160)).ReplaceLineEndings(" ");
        return $"{Description}: {Method} {Path} [{ContentType}] {body}{(Body is { Length: > 160 } ? $"… ({Body.Length} bytes)" : "")}";
    }
}
