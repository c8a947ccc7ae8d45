using LlmServer.OpenAi;
using LlmServer.OpenAi.Models;

namespace LlmServer.Admin;

/// <summary>Hot-swap: load and unload models and adapters, and point aliases, while serving; admin key only.</summary>
public static class AdminApi
{
    public static IServiceCollection AddAdmin(this IServiceCollection services) => services.AddSingleton<ModelAdministrationService>();

    public static IEndpointRouteBuilder MapAdmin(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder admin = app.MapGroup("/admin").RequireKey(KeyScope.Admin).WithTags("Admin")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status403Forbidden,
                StatusCodes.Status404NotFound, StatusCodes.Status409Conflict);
        admin.MapGet("/models", (ModelAdministrationService service) => TypedResults.Ok(service.ListModels()))
            .WithSummary("The served models as /v1/models lists them, with the directory each was loaded from");
        admin.MapPost("/models/load", LoadModel).WithSummary("Serve another checkpoint or a PEFT LoRA adapter").Accepts<LoadModelRequest>("application/json");
        admin.MapPost("/models/unload", UnloadModel).WithSummary("Stop serving a model and free its weights").Accepts<UnloadModelRequest>("application/json");
        admin.MapGet("/aliases", (ModelAdministrationService service) => TypedResults.Ok(service.ListAliases())).WithSummary("The aliases");
        admin.MapPost("/aliases", SetAlias).WithSummary("Point a served name at another model or checkpoint").Accepts<SetAliasRequest>("application/json");
        admin.MapDelete("/aliases/{alias}", async (string alias, ModelAdministrationService service) =>
            TypedResults.Ok(await service.RemoveAliasAsync(alias))).WithSummary("Remove an alias");
        return app;
    }

    private static async Task<Ok<ModelCard>> LoadModel(HttpContext context, ModelAdministrationService service) =>
        TypedResults.Ok(await service.LoadAsync(await OpenAiJson.ReadBodyAsync<LoadModelRequest>(context.Request, context.RequestAborted)));

    private static async Task<Ok<ModelUnloaded>> UnloadModel(HttpContext context, ModelAdministrationService service) =>
        TypedResults.Ok(await service.UnloadAsync(await OpenAiJson.ReadBodyAsync<UnloadModelRequest>(context.Request, context.RequestAborted)));

    private static async Task<Ok<AliasObject>> SetAlias(HttpContext context, ModelAdministrationService service) =>
        TypedResults.Ok(await service.SetAliasAsync(await OpenAiJson.ReadBodyAsync<SetAliasRequest>(context.Request, context.RequestAborted)));
}
