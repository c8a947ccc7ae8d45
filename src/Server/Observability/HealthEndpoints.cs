using LlmServer.Host.Drain;
using LlmServer.Inference.Engine;

namespace LlmServer.Observability;

public static class HealthEndpoints
{
    public static IEndpointRouteBuilder MapHealthEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/health", GetHealth)
            .WithTags("Health").WithSummary("Liveness: 200 once the model is loaded, 503 while loading or if loading failed")
            .Produces<HealthStatus>(StatusCodes.Status200OK).Produces<HealthStatus>(StatusCodes.Status503ServiceUnavailable);
        app.MapGet("/health/ready", GetReadiness)
            .WithTags("Health").WithSummary("Readiness: 200 only when the model is loaded and the server is not shutting down")
            .Produces<HealthStatus>(StatusCodes.Status200OK).Produces<HealthStatus>(StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    /// <summary>200 once the model is loaded, 503 before (and if loading failed).</summary>
    private static IResult GetHealth(IEngineClient engine) =>
        engine.Ready.IsCompletedSuccessfully
            ? TypedResults.Ok(new HealthStatus("ok"))
            : TypedResults.Json(new HealthStatus(engine.Ready.IsFaulted ? "failed" : "loading"), statusCode: StatusCodes.Status503ServiceUnavailable);

    /// <summary>What a load balancer should route by: a draining server is alive but wants no new requests.</summary>
    private static IResult GetReadiness(IEngineClient engine, DrainState drain)
    {
        string status = drain.IsDraining ? "draining"
            : engine.Ready.IsCompletedSuccessfully ? "ok"
            : engine.Ready.IsFaulted ? "failed" : "loading";
        return status == "ok"
            ? TypedResults.Ok(new HealthStatus(status))
            : TypedResults.Json(new HealthStatus(status), statusCode: StatusCodes.Status503ServiceUnavailable);
    }
}

/// <summary>The body of /health and /health/ready: ok, loading, failed or draining.</summary>
public sealed record HealthStatus(string Status);
