using Serilog.Core;
using Serilog.Events;
using Serilog.Formatting;

namespace LlmServer.Observability;

/// <summary>
/// Where the server writes its log lines instead of the console, in the format --log-format
/// chose. Not registered in production (the console sink writes with colours); tests register one
/// to read exactly the lines an operator would see.
/// </summary>
public sealed class LogOutput(TextWriter writer)
{
    public TextWriter Writer { get; } = TextWriter.Synchronized(writer);

    internal ILogEventSink Sink(ITextFormatter formatter) => new FormattedSink(formatter, Writer);

    private sealed class FormattedSink(ITextFormatter formatter, TextWriter writer) : ILogEventSink
    {
        public void Emit(LogEvent logEvent)
        {
            var line = new StringWriter();
            formatter.Format(logEvent, line);
            writer.Write(line.ToString());
            writer.Flush();
        }
    }
}
