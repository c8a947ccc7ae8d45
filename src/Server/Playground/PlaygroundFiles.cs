using Microsoft.Extensions.FileProviders;

namespace LlmServer.Playground;

/// <summary>
/// The browser playground: plain files from wwwroot, index.html at <c>/</c>. They are read from the
/// build output (AppContext.BaseDirectory), not from the working directory: <c>dotnet run</c> starts
/// in the user's shell directory, and the test host and the published image have no source tree.
/// </summary>
public static class PlaygroundFiles
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "wwwroot");

    /// <summary>
    /// Before routing, so the files need no key (they hold none; the page sends the key the user
    /// types with each API call) and no route of the API changes.
    /// </summary>
    public static WebApplication UsePlayground(this WebApplication app)
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            // A build without the files (a trimmed copy of the binaries) still serves the API.
            app.Logger.LogWarning("No playground files at {Directory}; / will not serve the playground", Directory);
            return app;
        }
        var files = new PhysicalFileProvider(Directory);
        app.UseDefaultFiles(new DefaultFilesOptions { FileProvider = files });
        app.UseStaticFiles(new StaticFileOptions
        {
            FileProvider = files,
            // The page and its scripts change with the server; a stale cached script would call an API that moved.
            OnPrepareResponse = file => file.Context.Response.Headers.CacheControl = "no-cache",
        });
        return app;
    }
}
