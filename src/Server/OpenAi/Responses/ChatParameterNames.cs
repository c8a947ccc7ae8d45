using System.Text.RegularExpressions;

namespace LlmServer.OpenAi.Responses;

/// <summary>
/// A refusal from the chat path names chat's parameters; the client sent the Responses API's, so the error is renamed
/// to them (response_format.json_schema.schema is text.format.schema, tools[0].function.parameters is
/// tools[0].parameters). A message's index in chat counts instructions and earlier turns, so it names input alone.
/// </summary>
public static partial class ChatParameterNames
{
    public static ApiException InResponsesTerms(ApiException refusal) =>
        refusal.Param is null
            ? refusal
            : new ApiException(refusal.StatusCode, Rename(refusal.Message), refusal.Type, Rename(refusal.Param), refusal.Code)
            {
                RetryAfterSeconds = refusal.RetryAfterSeconds,
                ResponseHeaders = refusal.ResponseHeaders,
            };

    private static string Rename(string text)
    {
        text = Messages().Replace(text, "input");
        text = ToolFunction().Replace(text, "$1.");
        return text
            .Replace("response_format.json_schema", "text.format", StringComparison.Ordinal)
            .Replace("response_format", "text.format", StringComparison.Ordinal)
            .Replace("tool_choice.function.name", "tool_choice.name", StringComparison.Ordinal)
            .Replace("max_completion_tokens", "max_output_tokens", StringComparison.Ordinal);
    }

    [GeneratedRegex(@"\bmessages(\[\d+\](\.[a-z_]+(\[\d+\])?)*)?")]
    private static partial Regex Messages();

    [GeneratedRegex(@"\b(tools\[\d+\])\.function\.")]
    private static partial Regex ToolFunction();
}
