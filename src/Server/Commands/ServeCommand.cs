using LlmServer.Host;
using Microsoft.Extensions.Options;

namespace LlmServer.Commands;

/// <summary><c>llmserver serve [--model DIR] [flags]</c>: the OpenAI-compatible server.</summary>
public static class ServeCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (ServeCommandLine.WantsHelp(args))
        {
            Console.WriteLine(ServeCommandLine.Help());
            return 0;
        }
        try
        {
            await using WebApplication app = ServerApplication.Build(args);
            // Validate before the host starts, so a bad flag is one line, not a host stack trace.
            ServerOptions options = app.Services.GetRequiredService<IOptions<ServerOptions>>().Value;
            if (ServerOptionsSetup.AddressInUse(options) is { } address)
            {
                Console.Error.WriteLine($"error: --port: {address} is already in use by another process (stop it, or choose another --port)");
                return 2;
            }
            await app.RunAsync();
            return Environment.ExitCode;
        }
        catch (CommandLineException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
        catch (OptionsValidationException e)
        {
            // Each failure already reads "--flag: message" (ServerOptionsValidator): one line each.
            foreach (string failure in e.Failures)
            {
                Console.Error.WriteLine($"error: {failure}");
            }
            return 2;
        }
        finally
        {
            // Whatever the shutdown logged reaches the console before the process ends.
            await Serilog.Log.CloseAndFlushAsync();
        }
    }
}
