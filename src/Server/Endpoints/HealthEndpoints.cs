using LlmServer.Inference.Engine;

namespace LlmServer.Endpoints;

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", GetHealth);
        return app;
    }

    /// <summary>200 once the model is loaded, 503 before (and if loading failed).</summary>
    private static IResult GetHealth(IEngineClient engine) =>
        engine.Ready.IsCompletedSuccessfully
            ? TypedResults.Ok(new { status = "ok" })
            : TypedResults.Json(new { status = engine.Ready.IsFaulted ? "failed" : "loading" }, statusCode: StatusCodes.Status503ServiceUnavailable);
}
