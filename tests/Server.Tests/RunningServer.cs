using LlmServer.Inference.Engine;

namespace LlmServer.Tests;

/// <summary>The real server on a loopback port with a client pointed at it; every server test starts one of these.</summary>
public sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RunningServer(WebApplication app, HttpClient http)
    {
        _app = app;
        Http = http;
    }

    public HttpClient Http { get; }
    public Uri BaseAddress => Http.BaseAddress!;
    public IEngineClient Engine => _app.Services.GetRequiredService<IEngineClient>();
    /// <summary>The server's services, for a test that plays a part the server has no route for (the training worker).</summary>
    public IServiceProvider Services => _app.Services;

    /// <param name="flags">serve's flags; "--port 0" is added.</param>
    /// <param name="waitForModel">false to look at the server while the model is still loading.</param>
    /// <param name="configuration">Configuration keys beyond the flags (Serilog:MinimumLevel:Default, say), as appsettings.json would set them.</param>
    public static async Task<RunningServer> StartAsync(IReadOnlyList<string> flags, Action<IServiceCollection>? replaceServices = null, bool waitForModel = true,
        IReadOnlyDictionary<string, string?>? configuration = null)
    {
        WebApplication app = ServerApplication.Build([.. flags, "--port", "0"], configuration, replaceServices);
        await app.StartAsync();
        var server = new RunningServer(app, new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromSeconds(60) });
        if (waitForModel)
        {
            await server.Engine.Ready;
        }
        return server;
    }

    public async ValueTask DisposeAsync()
    {
        Http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}
