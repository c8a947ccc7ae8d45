using LlmServer.Admin;
using LlmServer.ApiDocumentation;
using LlmServer.Files;
using LlmServer.FineTuning;
using LlmServer.Host;
using LlmServer.Host.Drain;
using LlmServer.Observability;
using LlmServer.OpenAi;
using LlmServer.OpenAi.Chat;
using LlmServer.OpenAi.Completions;
using LlmServer.OpenAi.Generation;
using LlmServer.OpenAi.Models;
using LlmServer.OpenAi.Responses;
using LlmServer.OpenAi.Tokenizer;
using LlmServer.OpenAi.StructuredOutputs;
using LlmServer.Playground;

namespace LlmServer;

/// <summary>
/// Builds the web application for <c>serve</c>; the tests build it the same way. Each feature
/// registers its services and maps its routes itself; this only puts them in order.
/// </summary>
public static class ServerApplication
{
    /// <param name="replaceServices">Lets tests swap a service (for example an engine that never finishes loading).</param>
    public static WebApplication Build(IReadOnlyList<string> serveArgs, IReadOnlyDictionary<string, string?>? configurationOverrides = null,
        Action<IServiceCollection>? replaceServices = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
        });
        builder.Configuration.AddEnvironmentVariables(prefix: "LLMSERVER_");
        builder.Configuration.AddInMemoryCollection(ServeCommandLine.Parse(serveArgs));
        if (configurationOverrides is not null)
        {
            builder.Configuration.AddInMemoryCollection(configurationOverrides);
        }
        ServerOptionsValidator.ThrowOnUnconvertibleValues(builder.Configuration);

        builder.Services.AddServerOptions();
        builder.Services.AddEngine();
        builder.Services.AddObservability();
        builder.Services.AddOpenAiJson();
        builder.Services.AddGeneration();
        builder.Services.AddStructuredOutputs();
        builder.Services.AddCompletions();
        builder.Services.AddChatCompletions();
        builder.Services.AddResponses();
        builder.Services.AddFiles();
        builder.Services.AddAdmin();
        builder.Services.AddFineTuning();
        // After the engine and the worker: the host stops hosted services in reverse, so the drain runs first.
        builder.Services.AddShutdownDrain();
        builder.Services.AddOpenApiDocumentation();
        builder.Services.AddCrossOriginRequests();
        replaceServices?.Invoke(builder.Services);

        WebApplication app = builder.Build();
        app.UseServerAddress();
        app.UseMiddleware<RequestIdMiddleware>();
        app.UseRequestLog();
        app.UseCrossOriginRequests();
        app.UseMiddleware<OpenAiErrorMiddleware>();
        app.UseShutdownDrain();
        app.UsePlayground();
        app.UseOpenApiDocumentation();
        app.MapObservability();
        app.MapModels();
        app.MapCompletions();
        app.MapChatCompletions();
        app.MapResponses();
        app.MapTokenizer();
        app.MapFiles();
        app.MapAdmin();
        app.MapFineTuning();
        return app;
    }
}
