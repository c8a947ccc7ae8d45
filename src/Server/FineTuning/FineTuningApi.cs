using LlmServer.Admin;
using LlmServer.Host;
using LlmServer.OpenAi;
using LlmServer.Storage;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;

namespace LlmServer.FineTuning;

/// <summary>
/// OpenAI's fine-tuning jobs API (/v1/fine_tuning/jobs; admin key only), the worker that trains the
/// jobs, and the gauge of jobs by status.
/// </summary>
public static class FineTuningApi
{
    public static IServiceCollection AddFineTuning(this IServiceCollection services)
    {
        services.AddSingleton(provider => new JobStore(provider.GetRequiredService<FineTuningStore>()));
        services.AddSingleton<JobSignals>();
        services.AddSingleton<IFineTunableModels, ServedFineTunableModels>();
        services.AddSingleton<ICheckpointCatalog, JobCheckpointCatalog>();
        services.AddSingleton<FineTuningJobService>();
        services.AddSingleton<FineTuningJobMetrics>();
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(FineTuningJobMetrics.MeterName));
        // With --no-training there is no worker at all: made at start, it would open the store, which
        // a server that only takes jobs leaves to the first request that needs it.
        services.AddSingleton<IHostedService>(provider => provider.GetRequiredService<IOptions<ServerOptions>>().Value.NoTraining
            ? new NoWorker()
            : ActivatorUtilities.CreateInstance<FineTuningWorker>(provider));
        return services;
    }

    public static IEndpointRouteBuilder MapFineTuning(this IEndpointRouteBuilder app)
    {
        // The gauge exists once its meter is created; nothing else asks for it.
        app.ServiceProvider.GetRequiredService<FineTuningJobMetrics>();

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

    private sealed class NoWorker : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
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
