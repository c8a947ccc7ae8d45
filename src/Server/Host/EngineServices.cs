using LlmServer.Inference.Engine;
using LlmServer.Inference.Scheduling;
using Microsoft.Extensions.Options;

namespace LlmServer.Host;

/// <summary>The engine as the server runs it: one client over the engine thread, started and stopped with the host.</summary>
public static class EngineServices
{
    public static IServiceCollection AddEngine(this IServiceCollection services)
    {
        services.AddSingleton(provider => new EngineClient(ToEngineOptions(provider.GetRequiredService<IOptions<ServerOptions>>().Value)));
        services.AddSingleton<IEngineClient>(provider => provider.GetRequiredService<EngineClient>());
        services.AddSingleton<IEngineModelAdministration>(provider => provider.GetRequiredService<EngineClient>());
        services.AddHostedService<EngineStartup>();
        return services;
    }

    public static EngineOptions ToEngineOptions(ServerOptions options)
    {
        KvCacheBudget.TryParse(options.KvCacheMemory, out KvCacheBudget kvBudget);
        EnginePrecision precision = EnginePrecision.Resolve(options.Device, options.Dtype, options.Quantization, options.KvCacheDtype);
        return new EngineOptions
        {
            ModelDirectory = Path.GetFullPath(options.Model!),
            ServedModelName = options.ResolvedServedModelName,
            Device = options.Device,
            Dtype = precision.Dtype,
            Weights = precision.Weights,
            KvCacheDtype = precision.KvCacheDtype,
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
