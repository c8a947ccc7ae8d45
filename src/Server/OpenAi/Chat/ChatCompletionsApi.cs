using LlmServer.OpenAi.Chat.ToolCalling;

namespace LlmServer.OpenAi.Chat;

/// <summary>OpenAI's chat completions, POST /v1/chat/completions.</summary>
public static class ChatCompletionsApi
{
    public static IServiceCollection AddChatCompletions(this IServiceCollection services) => services.AddSingleton<ChatCompletionService>().AddSingleton<ToolCallGrammars>();

    public static IEndpointRouteBuilder MapChatCompletions(this IEndpointRouteBuilder app)
    {
        // The service writes the response itself (one JSON value, or SSE chunks when stream is true).
        app.MapInferenceGroup().MapPost("/chat/completions", CreateChatCompletion)
            .WithSummary("Chat completion; streamed as text/event-stream when stream is true")
            .Accepts<ChatCompletionRequest>("application/json")
            .Produces<ChatCompletionResponse>(StatusCodes.Status200OK, "application/json")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status429TooManyRequests);
        return app;
    }

    private static async Task CreateChatCompletion(HttpContext context, ChatCompletionService chat) =>
        await chat.HandleAsync(await OpenAiJson.ReadBodyAsync<ChatCompletionRequest>(context.Request, context.RequestAborted), context);
}
