using System.Diagnostics;
using LlmServer.Host;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Serilog;
using Serilog.AspNetCore;
using Serilog.Events;

namespace LlmServer.Observability;

/// <summary>
/// The one log line per HTTP request: method, route pattern, status, duration, request id and, for
/// generation requests, the model and token counts that the serving services record here as they
/// learn them. Prompt and completion text are kept for the line only with --log-prompts.
/// </summary>
public sealed class RequestLog(IOptions<ServerOptions> options)
{
    public const string MessageTemplate =
        "{RequestMethod} {Route:l} responded {StatusCode} in {Elapsed:0.0} ms; model={Model:l} prompt_tokens={PromptTokens} completion_tokens={CompletionTokens} request_id={RequestId:l}";

    private static readonly object ModelKey = new(), PromptTokensKey = new(), CompletionTokensKey = new(), PromptKey = new(), CompletionKey = new();

    public bool LogsPrompts => options.Value.LogPrompts;

    /// <summary>The served model that answers the request (also tagged on the request's span).</summary>
    public void SetModel(HttpContext context, string model)
    {
        context.Items[ModelKey] = model;
        Activity.Current?.SetTag("gen_ai.request.model", model);
    }

    public void SetTokens(HttpContext context, int promptTokens, int? completionTokens)
    {
        context.Items[PromptTokensKey] = promptTokens;
        Activity.Current?.SetTag("gen_ai.usage.input_tokens", promptTokens);
        if (completionTokens is int completion)
        {
            context.Items[CompletionTokensKey] = completion;
            Activity.Current?.SetTag("gen_ai.usage.output_tokens", completion);
        }
    }

    /// <summary>Keeps the texts for the log line only when --log-prompts asked for them; the text is computed only then.</summary>
    public void SetPrompt(HttpContext context, Func<string> prompt)
    {
        if (LogsPrompts)
        {
            context.Items[PromptKey] = ForLine(prompt());
        }
    }

    public void SetCompletion(HttpContext context, Func<string> completion)
    {
        if (LogsPrompts)
        {
            context.Items[CompletionKey] = ForLine(completion());
        }
    }

    /// <summary>The text format would break a request's line at every newline of a prompt; JSON escapes them itself.</summary>
    private string ForLine(string text) =>
        options.Value.LogFormat == "json" ? text : text.Replace("\r", "\\r", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <summary>Serilog's request logging, with our template, fields and levels.</summary>
    public static void Configure(RequestLoggingOptions logging, Serilog.ILogger logger, bool logPrompts)
    {
        logging.Logger = logger;
        // Only asked-for text goes in the message, so the text format shows it too.
        logging.MessageTemplate = logPrompts ? MessageTemplate + " prompt={Prompt} completion={Completion}" : MessageTemplate;
        logging.GetLevel = (context, _, exception) =>
            exception is not null || context.Response.StatusCode >= 500 ? LogEventLevel.Error
            // Probes and scrapes every few seconds would drown the lines that matter.
            : IsProbe(context.Request.Path) && context.Response.StatusCode < 400 ? LogEventLevel.Debug
            : LogEventLevel.Information;
        logging.EnrichDiagnosticContext = (diagnostics, context) =>
        {
            diagnostics.Set("Route", (context.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText ?? context.Request.Path.ToString());
            diagnostics.Set("RequestId", context.TraceIdentifier);
            diagnostics.Set("Model", context.Items.TryGetValue(ModelKey, out object? model) ? model : null);
            diagnostics.Set("PromptTokens", context.Items.TryGetValue(PromptTokensKey, out object? prompt) ? prompt : null);
            diagnostics.Set("CompletionTokens", context.Items.TryGetValue(CompletionTokensKey, out object? completion) ? completion : null);
            if (logPrompts)
            {
                diagnostics.Set("Prompt", context.Items.TryGetValue(PromptKey, out object? promptText) ? promptText : null);
                diagnostics.Set("Completion", context.Items.TryGetValue(CompletionKey, out object? completionText) ? completionText : null);
            }
        };
    }

    private static bool IsProbe(PathString path) => path.StartsWithSegments("/health") || path.StartsWithSegments("/metrics");
}
