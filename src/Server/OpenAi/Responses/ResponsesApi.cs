using LlmServer.Host;
using Microsoft.Extensions.Options;

namespace LlmServer.OpenAi.Responses;

/// <summary>OpenAI's Responses API: POST /v1/responses, and the stored responses' GET, DELETE and input_items.</summary>
public static class ResponsesApi
{
    public static IServiceCollection AddResponses(this IServiceCollection services) =>
        services.AddSingleton<ResponseService>()
            .AddSingleton(provider => new ResponseStore(provider.GetRequiredService<IOptions<ServerOptions>>().Value.DataDir));

    public static IEndpointRouteBuilder MapResponses(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder v1 = app.MapInferenceGroup();
        // The service writes the response itself (one JSON value, or SSE events when stream is true).
        v1.MapPost("/responses", CreateResponse)
            .WithSummary("Create a model response; streamed as text/event-stream when stream is true")
            .Accepts<CreateResponseRequest>("application/json")
            .Produces<ResponseObject>(StatusCodes.Status200OK, "application/json")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound, StatusCodes.Status429TooManyRequests);
        v1.MapGet("/responses/{id}", (string id, ResponseService responses) => TypedResults.Ok(responses.Get(id)))
            .WithSummary("A stored response").ProducesOpenAiErrors(StatusCodes.Status404NotFound);
        v1.MapDelete("/responses/{id}", (string id, ResponseService responses) => TypedResults.Ok(responses.Delete(id)))
            .WithSummary("Delete a stored response").ProducesOpenAiErrors(StatusCodes.Status404NotFound);
        v1.MapGet("/responses/{id}/input_items", (string id, ResponseService responses, string? limit, string? order, string? after) =>
                TypedResults.Ok(responses.InputItems(id, limit, order, after)))
            .WithSummary("The input items of a stored response").ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status404NotFound);
        return app;
    }

    private static async Task CreateResponse(HttpContext context, ResponseService responses) =>
        await responses.HandleAsync(await OpenAiJson.ReadBodyAsync<CreateResponseRequest>(context.Request, context.RequestAborted), context);
}
