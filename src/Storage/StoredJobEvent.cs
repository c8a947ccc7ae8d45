namespace LlmServer.Storage;

public enum JobEventLevel
{
    Info,
    Warn,
    Error,
}

/// <summary>OpenAI's event types: a line for people, or training metrics in <c>data</c>.</summary>
public enum JobEventType
{
    Message,
    Metrics,
}

/// <summary>One line of a job's log; <paramref name="DataJson"/> is a JSON object or null.</summary>
public sealed record StoredJobEvent(string Id, string JobId, long CreatedAt, JobEventLevel Level, string Message, JobEventType Type, string? DataJson);
