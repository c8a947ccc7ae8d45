namespace LlmServer.OpenAi;

/// <summary>The /v1 group that OpenAI's inference routes (models, completions, chat) share.</summary>
public static class InferenceRoutes
{
    /// <summary>Each inference feature maps its routes on this group: the inference key, and the refusals any of them can give.</summary>
    public static RouteGroupBuilder MapInferenceGroup(this IEndpointRouteBuilder app) =>
        app.MapGroup("/v1").RequireKey(KeyScope.Inference).WithTags("Inference")
            .ProducesOpenAiErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status503ServiceUnavailable);
}
