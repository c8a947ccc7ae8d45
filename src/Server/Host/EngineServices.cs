using LlmServer.Inference.Engine;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Scheduling;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

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
        bool cuda = options.Device.StartsWith("cuda", StringComparison.Ordinal);
        ScalarType dtype = options.Dtype switch
        {
            "float16" => ScalarType.Float16,
            "bfloat16" => ScalarType.BFloat16,
            "float32" => ScalarType.Float32,
            _ => cuda ? ScalarType.BFloat16 : ScalarType.Float32,
        };
        // The CPU has no fast bfloat16 arithmetic without AVX512_BF16: there bfloat16 is how the weights
        // are kept, and the model computes in float32 (docs/quantization.md).
        WeightFormat weights = options.Quantization == "int8" ? WeightFormat.Int8
            : !cuda && dtype == ScalarType.BFloat16 ? WeightFormat.BFloat16
            : WeightFormat.Float32;
        if (!cuda)
        {
            dtype = ScalarType.Float32;
        }
        ScalarType? kvCacheDtype = options.KvCacheDtype switch
        {
            "float32" => ScalarType.Float32,
            "bfloat16" => ScalarType.BFloat16,
            _ => null,
        };
        return new EngineOptions
        {
            ModelDirectory = Path.GetFullPath(options.Model!),
            ServedModelName = options.ResolvedServedModelName,
            Device = options.Device,
            Dtype = dtype,
            Weights = weights,
            KvCacheDtype = kvCacheDtype,
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
