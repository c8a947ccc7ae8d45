namespace LlmServer.Storage;

/// <summary>Why a job failed, in OpenAI's terms; <paramref name="Param"/> names the request field at fault, if one is.</summary>
public sealed record JobError(string Code, string Message, string? Param);
