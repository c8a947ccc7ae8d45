namespace LlmServer.OpenAi.Completions;

/// <summary>OpenAI's legacy text completions, POST /v1/completions.</summary>
public static class CompletionsApi
{
    public static IServiceCollection AddCompletions(this IServiceCollection services) => services.AddSingleton<CompletionService>();

    public static IEndpointRouteBuilder MapCompletions(this IEndpointRouteBuilder app)
    {
        // The service writes the response itself (one JSON value, or SSE chunks when stream is true).
        app.MapInferenceGroup().MapPost("/completions", CreateCompletion)
            .WithSummary("Legacy text completion; streamed as text/event-stream when stream is true")
            .Accepts<CompletionRequest>("application/json")
            .Produces<CompletionResponse>(StatusCodes.Status200OK, "application/json")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status429TooManyRequests);
        return app;
    }

    private static async Task CreateCompletion(HttpContext context, CompletionService completions) =>
        await completions.HandleAsync(await OpenAiJson.ReadBodyAsync<CompletionRequest>(context.Request, context.RequestAborted), context);
}
