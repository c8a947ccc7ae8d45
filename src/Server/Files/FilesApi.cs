using LlmServer.Host;
using LlmServer.OpenAi;
using LlmServer.Storage;
using Microsoft.Extensions.Options;

namespace LlmServer.Files;

/// <summary>OpenAI's Files API (/v1/files), for fine-tuning data; admin key only.</summary>
public static class FilesApi
{
    public static IServiceCollection AddFiles(this IServiceCollection services)
    {
        // Created on first use, so a server whose admin routes are never called writes no data directory.
        services.AddSingleton(provider => new FineTuningStore(provider.GetRequiredService<IOptions<ServerOptions>>().Value.DataDir));
        services.AddSingleton<FileService>();
        return services;
    }

    public static IEndpointRouteBuilder MapFiles(this IEndpointRouteBuilder app)
    {
        RouteGroupBuilder files = app.MapGroup("/v1/files").RequireKey(KeyScope.Admin).WithTags("Files")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status403Forbidden, StatusCodes.Status404NotFound);
        files.MapPost("", async (HttpContext context, FileService service) => TypedResults.Ok(await service.UploadAsync(context)))
            .WithSummary("Upload fine-tuning data (JSONL), streamed to disk").Accepts<FileUploadForm>("multipart/form-data")
            .ProducesOpenAiErrors(StatusCodes.Status413PayloadTooLarge);
        files.MapGet("", (FileService service, string? purpose, string? limit, string? after, string? order) =>
            TypedResults.Ok(service.List(purpose, limit, after, order)));
        files.MapGet("/{id}", (string id, FileService service) => TypedResults.Ok(service.Get(id)));
        // Every stored file is fine-tuning JSONL, which OpenAI's spec serves as application/json.
        files.MapGet("/{id}/content", (string id, FileService service) =>
        {
            (Stream content, var file) = service.OpenContent(id);
            return TypedResults.Stream(content, "application/json", file.Filename);
        }).WithSummary("The file's bytes (JSONL)").Produces<string>(StatusCodes.Status200OK, "application/json");
        files.MapDelete("/{id}", (string id, FileService service) => TypedResults.Ok(service.Delete(id)));
        return app;
    }
}

/// <summary>The multipart form of POST /v1/files, for the OpenAPI document (FileService reads the form as a stream).</summary>
public sealed record FileUploadForm(IFormFile File, string Purpose);
