using LlmServer.Administration;
using LlmServer.Endpoints;
using LlmServer.Files;
using LlmServer.FineTuning.Storage;
using LlmServer.Inference.Engine;
using LlmServer.Jobs;
using LlmServer.Serving;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.Events;
using Serilog.Formatting;
using Serilog.Formatting.Compact;
using Serilog.Formatting.Display;
using static TorchSharp.torch;

namespace LlmServer.Hosting;

/// <summary>Builds the web application for <c>serve</c>; the tests build it the same way.</summary>
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
        ServerOptions options = builder.Configuration.GetSection(ServerOptions.Section).Get<ServerOptions>() ?? new ServerOptions();
        // No --model (nor configured one): serve the bundled demo model.
        string? demoModel = options.Model is null ? BundledDemoModel.Find() : null;
        // Each host keeps its own logger (not the static Log.Logger), so servers side by side in one process (the tests) log apart.
        builder.Services.AddSerilog((services, logger) => ConfigureLogging(logger, builder.Configuration, services, options.LogFormat),
            preserveStaticLogger: true);

        builder.Services.AddOptions<ServerOptions>()
            .BindConfiguration(ServerOptions.Section)
            .PostConfigure(o => o.Model ??= demoModel)
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<ServerOptions>, ServerOptionsValidator>();

        string host = options.Host.Contains(':') ? $"[{options.Host}]" : options.Host;
        builder.WebHost.UseUrls($"http://{host}:{options.Port}");
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Every endpoint reads its body under this limit (413, see OpenAiErrorMiddleware); /v1/files
            // raises it for its own request to --max-upload-size. Validation refuses a bad value at start.
            kestrel.Limits.MaxRequestBodySize = Math.Max(0, options.MaxRequestBodyBytes);
        });

        builder.Services.ConfigureHttpJsonOptions(json => OpenAiJson.Configure(json.SerializerOptions));
        builder.Services.AddSingleton(services => new EngineClient(ToEngineOptions(services.GetRequiredService<IOptions<ServerOptions>>().Value)));
        builder.Services.AddSingleton<IEngineClient>(services => services.GetRequiredService<EngineClient>());
        builder.Services.AddSingleton<IEngineModelAdministration>(services => services.GetRequiredService<EngineClient>());
        builder.Services.AddHostedService<EngineStartup>();
        builder.Services.AddMetricsExport();
        builder.Services.AddTracingExport(TracingExport.IsValidEndpoint(options.OtlpEndpoint) ? options.OtlpEndpoint : null);
        builder.Services.AddSingleton<RequestLog>();
        builder.Services.AddSingleton<GenerationService>();
        builder.Services.AddSingleton<CompletionService>();
        builder.Services.AddSingleton<ChatCompletionService>();
        // Created on first use, so a server whose admin routes are never called writes no data directory.
        builder.Services.AddSingleton(services => new FineTuningStore(services.GetRequiredService<IOptions<ServerOptions>>().Value.DataDir));
        builder.Services.AddSingleton<FileService>();
        builder.Services.AddSingleton<ModelAdministrationService>();
        builder.Services.AddSingleton(services => new JobStore(services.GetRequiredService<FineTuningStore>()));
        builder.Services.AddSingleton<JobSignals>();
        builder.Services.AddSingleton<IFineTunableModels, ServedFineTunableModels>();
        builder.Services.AddSingleton<ICheckpointCatalog, JobCheckpointCatalog>();
        if (!options.NoTraining)
        {
            builder.Services.AddHostedService<FineTuningWorker>();
        }
        builder.Services.AddSingleton<FineTuningJobService>();
        builder.Services.AddSingleton<FineTuningJobMetrics>();

        // After the engine and the worker: the host stops hosted services in reverse, so the drain runs first.
        builder.Services.AddSingleton<DrainState>();
        builder.Services.AddHostedService<ShutdownDrainService>();
        // Kestrel's own wait must outlast the drain, or it would cut requests the drain still lets finish.
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(options.DrainTimeout + 30));
        builder.Services.AddOpenApiDocumentation();
        builder.Services.AddCrossOriginRequests(options);

        replaceServices?.Invoke(builder.Services);

        WebApplication app = builder.Build();
        // The gauge exists once its meter is created; nothing else asks for it.
        app.Services.GetRequiredService<FineTuningJobMetrics>();
        app.UseMiddleware<RequestIdMiddleware>();
        // Outside the error middleware, so the line shows the status the client got.
        app.UseSerilogRequestLogging(logging => RequestLog.Configure(logging, app.Services.GetRequiredService<Serilog.ILogger>(), options.LogPrompts));
        app.UseCrossOriginRequests(options);
        app.UseMiddleware<OpenAiErrorMiddleware>();
        app.UseMiddleware<DrainMiddleware>();
        app.UsePlayground();
        app.UseOpenApiDocumentation();
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapHealthEndpoints();
        app.MapOpenAiEndpoints();
        app.MapTokenizerEndpoints();
        app.MapFilesEndpoints();
        app.MapAdminEndpoints();
        app.MapFineTuningEndpoints();
        return app;
    }

    /// <summary>
    /// Information by default, ASP.NET Core's own chatter at Warning; configuration (Serilog:MinimumLevel
    /// in appsettings.json, LLMSERVER_Serilog__MinimumLevel__Default=Debug) is read after, so it wins.
    /// </summary>
    private static void ConfigureLogging(LoggerConfiguration logger, IConfiguration configuration, IServiceProvider services, string logFormat)
    {
        logger.MinimumLevel.Information()
            .MinimumLevel.Override("Microsoft.AspNetCore", LogEventLevel.Warning)
            .MinimumLevel.Override("Microsoft.Hosting", LogEventLevel.Warning)
            .ReadFrom.Configuration(configuration)
            .Enrich.FromLogContext();
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        ITextFormatter? json = logFormat == "json" ? new CompactJsonFormatter() : null;
        if (services.GetService<LogOutput>() is { } output)
        {
            logger.WriteTo.Sink(output.Sink(json ?? new MessageTemplateTextFormatter(TextTemplate, invariant)));
        }
        else if (json is not null)
        {
            logger.WriteTo.Console(json);
        }
        else
        {
            logger.WriteTo.Console(outputTemplate: TextTemplate, formatProvider: invariant);
        }
    }

    private const string TextTemplate = "[{Timestamp:HH:mm:ss} {Level:u3}] {Message:lj}{NewLine}{Exception}";

    public static EngineOptions ToEngineOptions(ServerOptions options)
    {
        KvCacheBudget.TryParse(options.KvCacheMemory, out KvCacheBudget kvBudget);
        bool cuda = options.Device.StartsWith("cuda", StringComparison.Ordinal);
        ScalarType dtype = options.Dtype switch
        {
            "float16" => ScalarType.Float16,
            "bfloat16" => ScalarType.BFloat16,
            "float32" => ScalarType.Float32,
            _ => cuda ? ScalarType.BFloat16 : ScalarType.Float32,
        };
        return new EngineOptions
        {
            ModelDirectory = Path.GetFullPath(options.Model!),
            ServedModelName = options.ResolvedServedModelName,
            Device = options.Device,
            Dtype = dtype,
            MaxModelLen = options.MaxModelLen,
            BlockSize = options.BlockSize,
            KvCacheMemoryBytes = kvBudget.Bytes,
            KvCacheMemoryFraction = kvBudget.Fraction,
            EnablePrefixCaching = !options.NoPrefixCaching,
            MaxQueuedRequests = options.MaxQueue,
            CpuThreads = options.Threads,
            BackgroundShare = options.TrainingShare,
            Scheduler = new SchedulerOptions { MaxNumSeqs = options.MaxNumSeqs, MaxNumBatchedTokens = options.MaxNumBatchedTokens },
        };
    }
}
