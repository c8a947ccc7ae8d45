using LlmServer.Inference.Engine;
using LlmServer.OpenAi;
using Microsoft.Extensions.Options;

namespace LlmServer.Host.Drain;

/// <summary>Graceful shutdown, wired: the drain's state, its gate on the API routes, and the service that runs it.</summary>
public static class ShutdownDrain
{
    /// <summary>
    /// After the engine and the fine-tuning worker: the host stops hosted services in reverse
    /// order of registration, so the drain runs first.
    /// </summary>
    public static IServiceCollection AddShutdownDrain(this IServiceCollection services)
    {
        services.AddSingleton<DrainState>();
        services.AddHostedService<ShutdownDrainService>();
        // Kestrel's own wait must outlast the drain, or it would cut requests the drain still lets finish.
        services.AddOptions<HostOptions>().Configure<IOptions<ServerOptions>>((host, server) =>
            host.ShutdownTimeout = TimeSpan.FromSeconds(server.Value.DrainTimeout + 30));
        return services;
    }

    /// <summary>Inside the error middleware, which turns the refusal into OpenAI's 503.</summary>
    public static WebApplication UseShutdownDrain(this WebApplication app)
    {
        app.UseMiddleware<DrainMiddleware>();
        return app;
    }
}

/// <summary>
/// Whether the server still takes new work, and how much work is in flight. Draining starts when
/// the host is asked to stop (SIGTERM, Ctrl+C); from then on new API requests are refused with 503
/// while the ones already accepted run to their end.
/// </summary>
public sealed class DrainState
{
    private int _inFlight;
    private volatile bool _draining;
    private readonly TaskCompletionSource _idleAfterDrain = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool IsDraining => _draining;
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Counts a request in; false (counted nothing) once draining has begun.</summary>
    public bool TryEnter()
    {
        Interlocked.Increment(ref _inFlight);
        if (_draining)
        {
            Exit();
            return false;
        }
        return true;
    }

    public void Exit()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _draining)
        {
            _idleAfterDrain.TrySetResult();
        }
    }

    public void BeginDrain()
    {
        _draining = true;
        if (InFlight == 0)
        {
            _idleAfterDrain.TrySetResult();
        }
    }

    /// <summary>Completes when draining has begun and the last request in flight has finished.</summary>
    public Task Idle => _idleAfterDrain.Task;

    public static ApiException ShuttingDown() =>
        new(StatusCodes.Status503ServiceUnavailable, "The server is shutting down and takes no new requests; retry against another instance.",
            type: "service_unavailable", code: "server_shutting_down")
        {
            ResponseHeaders = [new("Connection", "close")],
        };
}

/// <summary>Admits API requests (/v1, /tokenize, /detokenize, /admin) only while the server is not draining, and counts them while they run.</summary>
public sealed class DrainMiddleware(RequestDelegate next, DrainState drain)
{
    public async Task InvokeAsync(HttpContext context)
    {
        if (!IsApiPath(context.Request.Path))
        {
            await next(context);
            return;
        }
        if (!drain.TryEnter())
        {
            throw DrainState.ShuttingDown();
        }
        try
        {
            await next(context);
        }
        finally
        {
            drain.Exit();
        }
    }

    private static bool IsApiPath(PathString path) =>
        path.StartsWithSegments("/v1") || path.StartsWithSegments("/tokenize") || path.StartsWithSegments("/detokenize")
        || path.StartsWithSegments("/admin");
}

/// <summary>
/// Graceful shutdown. Draining runs in <see cref="IHostedLifecycleService.StoppingAsync"/>, which the
/// host calls before it stops any hosted service, the web server included: from the moment the
/// application is stopping, new API requests get 503 while the listener stays open, and the
/// requests in flight get up to --drain-timeout to finish. What is still running then is ended by
/// stopping the engine, which finishes every request as aborted: the services turn that into a 503,
/// or in a stream an error event and [DONE] (code server_shutting_down), never a silent cut. After
/// that the web server closes its listener, the fine-tuning worker stops (a job it was training stays
/// resumable) and the engine's own shutdown completes.
/// </summary>
public sealed class ShutdownDrainService(DrainState drain, IHostApplicationLifetime lifetime, IOptions<ServerOptions> options,
    IEngineClient engine, ILogger<ShutdownDrainService> logger) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        lifetime.ApplicationStopping.Register(drain.BeginDrain);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        drain.BeginDrain();
        TimeSpan timeout = TimeSpan.FromSeconds(options.Value.DrainTimeout);
        if (drain.InFlight > 0)
        {
            logger.LogInformation("Shutting down: draining {Requests} requests in flight (up to {Seconds}s)", drain.InFlight, timeout.TotalSeconds);
        }
        try
        {
            await drain.Idle.WaitAsync(timeout, cancellationToken);
            return;
        }
        catch (TimeoutException)
        {
            logger.LogWarning("Shutting down: {Requests} requests still running after the {Seconds}s drain timeout are ended", drain.InFlight, timeout.TotalSeconds);
        }
        catch (OperationCanceledException)
        {
        }
        if (engine is IAsyncDisposable stoppable)
        {
            // Disposing twice is allowed: EngineStartup disposes it again at the end of the shutdown.
            await stoppable.DisposeAsync();
        }
        // Give the ended requests a moment to write their last bytes before the listener closes.
        await drain.Idle.WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None).ContinueWith(_ => { }, TaskScheduler.Default);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
