using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Models;

/// <summary>OpenAI's /v1/models: the served models, adapters and aliases.</summary>
public static class ModelsApi
{
    public static IEndpointRouteBuilder MapModels(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder v1 = app.MapInferenceGroup();
        v1.MapGet("/models", ListModels).WithSummary("The served models, adapters and aliases");
        v1.MapGet("/models/{model}", GetModel).WithSummary("One served model").ProducesOpenAiErrors(StatusCodes.Status404NotFound);
        return app;
    }

    private static Ok<ModelList> ListModels(GenerationService generation)
    {
        generation.ResolveModel(null);
        return TypedResults.Ok(new ModelList(ModelCards.ForCatalog(generation.Engine.Models, samplingDefaults: generation.SamplingDefaults)));
    }

    private static Ok<ModelCard> GetModel(string model, GenerationService generation)
    {
        generation.ResolveModel(model);
        return TypedResults.Ok(ModelCards.ForName(generation.Engine.Models, model, generation.SamplingDefaults) ?? throw ApiException.ModelNotFound(model));
    }
}
