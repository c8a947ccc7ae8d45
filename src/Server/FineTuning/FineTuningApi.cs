using LlmServer.Contracts;
using LlmServer.Hosting;
using LlmServer.Jobs;
using LlmServer.Serving;

namespace LlmServer.Endpoints;

/// <summary>OpenAI's fine-tuning jobs API (/v1/fine_tuning/jobs); admin key only.</summary>
public static class FineTuningEndpoints
{
    public static IEndpointRouteBuilder MapFineTuningEndpoints(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder jobs = app.MapGroup("/v1/fine_tuning/jobs").RequireKey(KeyScope.Admin).WithTags("Fine-tuning")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status403Forbidden, StatusCodes.Status404NotFound);
        jobs.MapPost("", CreateJob).Accepts<CreateFineTuningJobRequest>("application/json");
        jobs.MapGet("", ListJobs);
        jobs.MapGet("/{id}", GetJob);
        jobs.MapPost("/{id}/cancel", CancelJob);
        jobs.MapGet("/{id}/events", ListEvents);
        jobs.MapGet("/{id}/checkpoints", ListCheckpoints);
        return app;
    }

    private static async Task<Ok<FineTuningJob>> CreateJob(HttpContext context, FineTuningJobService service) =>
        TypedResults.Ok(service.Create(await OpenAiJson.ReadBodyAsync<CreateFineTuningJobRequest>(context.Request, context.RequestAborted)));

    private static Ok<FineTuningJobList> ListJobs(FineTuningJobService service, string? after, string? limit) =>
        TypedResults.Ok(service.List(after, limit));

    private static Ok<FineTuningJob> GetJob(string id, FineTuningJobService service) =>
        TypedResults.Ok(service.Get(id));

    private static Ok<FineTuningJob> CancelJob(string id, FineTuningJobService service) =>
        TypedResults.Ok(service.Cancel(id));

    private static Ok<FineTuningJobEventList> ListEvents(string id, FineTuningJobService service, string? after, string? limit) =>
        TypedResults.Ok(service.ListEvents(id, after, limit));

    private static Ok<FineTuningJobCheckpointList> ListCheckpoints(string id, FineTuningJobService service, string? after, string? limit) =>
        TypedResults.Ok(service.ListCheckpoints(id, after, limit));
}
