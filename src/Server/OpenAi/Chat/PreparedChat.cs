using LlmServer.Inference.Engine;
using LlmServer.OpenAi.Chat.ToolCalling;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Chat;

/// <summary>
/// A chat request ready to run (<see cref="ChatCompletionService.Prepare"/>): its engine submissions, and its place in the
/// queue, held until disposed.
/// </summary>
/// <param name="NewReader">A fresh reader of one choice's tool calls; null when the request offers no tools the reply may call.</param>
public sealed record PreparedChat(EngineAdmission Admission, string Id, ServedModel Model, IReadOnlyList<EngineSubmission> Choices,
    ToolCallingRequest? Tools, Func<ToolCallReader?> NewReader) : IDisposable
{
    public void Dispose() => Admission.Dispose();
}
