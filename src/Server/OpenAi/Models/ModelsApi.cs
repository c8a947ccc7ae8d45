using LlmServer.Administration;
using LlmServer.Contracts;
using LlmServer.Hosting;
using LlmServer.Inference.Engine;
using LlmServer.Serving;

namespace LlmServer.Endpoints;

/// <summary>OpenAI's inference API under /v1.</summary>
public static class OpenAiEndpoints
{
    public static IEndpointRouteBuilder MapOpenAiEndpoints(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder v1 = app.MapGroup("/v1").RequireKey(KeyScope.Inference).WithTags("Inference")
            .ProducesOpenAiErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status503ServiceUnavailable);
        v1.MapGet("/models", ListModels).WithSummary("The served models, adapters and aliases");
        v1.MapGet("/models/{model}", GetModel).WithSummary("One served model").ProducesOpenAiErrors(StatusCodes.Status404NotFound);
        // The services write these responses themselves (one JSON value, or SSE chunks when stream is true).
        v1.MapPost("/completions", CreateCompletion).WithSummary("Legacy text completion; streamed as text/event-stream when stream is true")
            .Accepts<CompletionRequest>("application/json")
            .Produces<CompletionResponse>(StatusCodes.Status200OK, "application/json")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status429TooManyRequests);
        v1.MapPost("/chat/completions", CreateChatCompletion).WithSummary("Chat completion; streamed as text/event-stream when stream is true")
            .Accepts<ChatCompletionRequest>("application/json")
            .Produces<ChatCompletionResponse>(StatusCodes.Status200OK, "application/json")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status429TooManyRequests);
        return app;
    }

    private static Ok<ModelList> ListModels(GenerationService generation)
    {
        generation.ResolveModel(null);
        return TypedResults.Ok(new ModelList(ModelCards.ForCatalog(generation.Engine.Models)));
    }

    private static Ok<ModelCard> GetModel(string model, GenerationService generation)
    {
        generation.ResolveModel(model);
        return TypedResults.Ok(ModelCards.ForName(generation.Engine.Models, model) ?? throw ApiException.ModelNotFound(model));
    }

    // The services write the response themselves: a stream is SSE, not one JSON value.
    private static async Task CreateCompletion(HttpContext context, CompletionService completions) =>
        await completions.HandleAsync(await OpenAiJson.ReadBodyAsync<CompletionRequest>(context.Request, context.RequestAborted), context);

    private static async Task CreateChatCompletion(HttpContext context, ChatCompletionService chat) =>
        await chat.HandleAsync(await OpenAiJson.ReadBodyAsync<ChatCompletionRequest>(context.Request, context.RequestAborted), context);
}
