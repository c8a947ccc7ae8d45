using LlmServer.Inference.Engine;
using LlmServer.Inference.Runtime;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Inference.Sampling;
using Microsoft.Extensions.Options;

namespace LlmServer.Host;

/// <summary>
/// Starts the engine with the host and watches the model load: /health turns 200 when it is done;
/// if it fails the reason is logged as one line and the process exits non-zero. On shutdown the
/// engine thread is stopped and the model freed.
/// </summary>
public sealed class EngineStartup(IEngineClient engine, IHostApplicationLifetime lifetime, ILogger<EngineStartup> logger,
    IOptions<ServerOptions> options) : BackgroundService
{
    public const int LoadFailureExitCode = 3;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            ServedModel model = await engine.Ready.WaitAsync(stoppingToken);
            EngineOptions served = EngineServices.ToEngineOptions(options.Value);
            logger.LogInformation("Serving {Model} from {Directory}: {Shape}, {Parameters:N0} parameters, max model length {MaxModelLen}, " +
                "{Weights} weights, {KvCacheDtype} KV cache, loaded in {Seconds:F2}s",
                model.Name, model.Directory, model.Shape.Describe(), model.Shape.ParameterCount, model.MaxModelLen,
                served.Weights.ToString().ToLowerInvariant(), (served.KvCacheDtype ?? served.Dtype).ToString().ToLowerInvariant(),
                (DateTimeOffset.UtcNow - model.LoadedAt).TotalSeconds);
            logger.LogInformation("CPU matrix products: MKL dispatch {MklDispatch}", MklCpuDispatch.Describe());
            LogGenerationDefaults(model.GenerationDefaults);
        }
        catch (OperationCanceledException)
        {
        }
        catch (Exception e)
        {
            // One line that names the file and the problem: no stack trace for a bad checkpoint.
            string reason = e is CheckpointFormatException or ArgumentException or InvalidDataException or FileNotFoundException or DirectoryNotFoundException
                ? e.Message
                : $"{e.GetType().Name}: {e.Message}";
            logger.LogCritical("Cannot load the model: {Reason}", reason);
            Environment.ExitCode = LoadFailureExitCode;
            // A stop asked for while the host is still starting makes it log a start failure with a
            // stack trace; a bad checkpoint must stay one line, so stop once the host has started.
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            {
                try
                {
                    await started.Task.WaitAsync(stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            lifetime.StopApplication();
        }
    }

    /// <summary>Says, as vLLM does, when generation_config.json changes what a request without sampling parameters gets.</summary>
    private void LogGenerationDefaults(GenerationDefaults defaults)
    {
        if (defaults.IsEmpty)
        {
            return;
        }
        if (options.Value.GenerationConfig == ServerOptions.NeutralGenerationConfig)
        {
            logger.LogInformation("--generation-config vllm: the sampling defaults of {File} are not applied", GenerationDefaults.FileName);
            return;
        }
        logger.LogInformation("Requests that leave them out get the sampling defaults of {File}: {Defaults} (--generation-config vllm turns this off)",
            GenerationDefaults.FileName, defaults.AppliedSummary ?? "none the sampler has");
        if (defaults.NotAppliedSummary is { } notApplied)
        {
            logger.LogWarning("{File} also sets {NotApplied}, which this server's sampler does not have: not applied", GenerationDefaults.FileName, notApplied);
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        if (engine is IAsyncDisposable disposable)
        {
            await disposable.DisposeAsync();
        }
    }
}
