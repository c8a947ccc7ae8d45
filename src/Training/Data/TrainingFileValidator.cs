using System.Buffers;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace LlmServer.Training.Data;

/// <summary>The two example formats OpenAI accepts in a fine-tuning training file.</summary>
public enum TrainingFileFormat
{
    /// <summary><c>{"messages":[{"role":...,"content":...}, ...]}</c></summary>
    Chat,

    /// <summary><c>{"prompt":...,"completion":...}</c></summary>
    PromptCompletion,
}

/// <summary>One thing wrong with a training file, at a 1-based line number.</summary>
public sealed record TrainingFileProblem(int LineNumber, string Message)
{
    public override string ToString() => $"line {LineNumber}: {Message}";
}

/// <summary>
/// What validating a training file found. <see cref="ExampleCount"/> counts every non-blank line,
/// valid or not; <see cref="Format"/> is that of the first valid example, null when there is none.
/// <see cref="Problems"/> holds only the first problems found; <see cref="ProblemCount"/> counts all.
/// </summary>
public sealed record TrainingFileReport(
    TrainingFileFormat? Format,
    int ExampleCount,
    IReadOnlyList<TrainingFileProblem> Problems,
    int ProblemCount)
{
    public bool IsValid => ProblemCount == 0 && ExampleCount > 0;

    /// <summary>A single-line summary fit for an API error message.</summary>
    public string Describe()
    {
        if (ProblemCount == 0)
        {
            string format = Format is { } known ? $" in {TrainingFileValidator.NameOf(known)} format" : "";
            return ExampleCount == 0
                ? "The training file has no examples."
                : $"The training file is valid: {Count(ExampleCount, "example")}{format}.";
        }
        if (Problems.Count == 0)
        {
            return $"The training file is invalid: {Count(ProblemCount, "problem")}.";
        }
        string shown = Problems.Count < ProblemCount ? $", the first {Problems.Count}" : "";
        return $"The training file is invalid: {Count(ProblemCount, "problem")}{shown}: {string.Join("; ", Problems)}.";
    }

    private static string Count(int count, string noun) => count == 1 ? $"1 {noun}" : $"{count} {noun}s";
}

/// <summary>
/// Checks an uploaded fine-tuning file (UTF-8 JSONL, one example per line) against OpenAI's chat and
/// prompt/completion formats and reports every problem by line, so a bad upload is refused with
/// the same kind of explanation OpenAI gives instead of failing later inside a training job.
/// </summary>
public static class TrainingFileValidator
{
    private const int ReadChunkBytes = 64 * 1024;
    private const int MaxQuotedChars = 40;
    private static readonly string[] SupportedRoles = ["system", "user", "assistant", "tool"];

    /// <summary>
    /// Reads <paramref name="utf8Jsonl"/> to its end, one line at a time. Bad content never throws:
    /// it becomes a problem in the report, of which the first <paramref name="maxProblems"/> are kept.
    /// </summary>
    public static TrainingFileReport Validate(Stream utf8Jsonl, int maxProblems = 10)
    {
        ArgumentNullException.ThrowIfNull(utf8Jsonl);
        ArgumentOutOfRangeException.ThrowIfNegative(maxProblems);

        var keptProblems = new List<TrainingFileProblem>();
        int problemCount = 0;
        int exampleCount = 0;
        int lineNumber = 0;
        TrainingFileFormat? fileFormat = null;
        var lineProblems = new List<string>();

        foreach (ReadOnlyMemory<byte> rawLine in ReadLines(utf8Jsonl))
        {
            lineNumber++;
            ReadOnlyMemory<byte> line = lineNumber == 1 && rawLine.Span.StartsWith(Encoding.UTF8.Preamble)
                ? rawLine[Encoding.UTF8.Preamble.Length..]
                : rawLine;
            if (line.Span.Trim(" \t\r"u8).IsEmpty)
            {
                continue;
            }
            exampleCount++;

            lineProblems.Clear();
            TrainingFileFormat? exampleFormat = CheckExample(line, lineProblems);
            if (exampleFormat is { } format && fileFormat is { } expected && format != expected)
            {
                // Checking the example against its own format's rules would not help: the file must
                // be converted either way.
                lineProblems.Clear();
                lineProblems.Add($"{NameOf(format)} example in a {NameOf(expected)} file");
            }
            else if (lineProblems.Count == 0)
            {
                fileFormat ??= exampleFormat;
            }

            foreach (string message in lineProblems)
            {
                problemCount++;
                if (keptProblems.Count < maxProblems)
                {
                    keptProblems.Add(new TrainingFileProblem(lineNumber, message));
                }
            }
        }
        return new TrainingFileReport(fileFormat, exampleCount, keptProblems, problemCount);
    }

    internal static string NameOf(TrainingFileFormat format) => format switch
    {
        TrainingFileFormat.Chat => "chat",
        TrainingFileFormat.PromptCompletion => "prompt/completion",
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, null),
    };

    /// <summary>
    /// Lines as raw bytes, without their '\n', so that invalid UTF-8 can be reported on its own line
    /// rather than silently replaced by a decoder. Each line is valid only until the next is read.
    /// </summary>
    private static IEnumerable<ReadOnlyMemory<byte>> ReadLines(Stream stream)
    {
        byte[] chunk = new byte[ReadChunkBytes];
        var line = new ArrayBufferWriter<byte>();
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            int start = 0;
            int newline;
            while ((newline = Array.IndexOf(chunk, (byte)'\n', start, read - start)) >= 0)
            {
                line.Write(chunk.AsSpan(start, newline - start));
                yield return line.WrittenMemory;
                line.ResetWrittenCount();
                start = newline + 1;
            }
            line.Write(chunk.AsSpan(start, read - start));
        }
        if (line.WrittenCount > 0)
        {
            yield return line.WrittenMemory;
        }
    }

    /// <summary>Adds the example's problems to <paramref name="problems"/>; returns its format if it has a recognisable one.</summary>
    private static TrainingFileFormat? CheckExample(ReadOnlyMemory<byte> line, List<string> problems)
    {
        if (!Utf8.IsValid(line.Span))
        {
            problems.Add($"not valid UTF-8 at byte {IndexOfInvalidUtf8(line.Span) + 1}");
            return null;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException exception)
        {
            problems.Add($"not valid JSON at byte {exception.BytePositionInLine + 1} ({Printable(ReasonOf(exception))})");
            return null;
        }

        using (document)
        {
            JsonElement example = document.RootElement;
            if (example.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"not a JSON object but {KindName(example.ValueKind)}");
                return null;
            }
            if (example.TryGetProperty("messages", out JsonElement messages))
            {
                CheckChatExample(messages, problems);
                CheckTools(example, problems);
                return TrainingFileFormat.Chat;
            }
            if (example.TryGetProperty("prompt", out _) || example.TryGetProperty("completion", out _))
            {
                CheckPromptCompletionExample(example, problems);
                return TrainingFileFormat.PromptCompletion;
            }
            problems.Add("neither a chat example (\"messages\") nor a prompt/completion example (\"prompt\" and \"completion\")");
            return null;
        }
    }

    private static void CheckChatExample(JsonElement messages, List<string> problems)
    {
        if (messages.ValueKind != JsonValueKind.Array)
        {
            problems.Add($"\"messages\" must be an array, not {KindName(messages.ValueKind)}");
            return;
        }
        if (messages.GetArrayLength() == 0)
        {
            problems.Add("\"messages\" is empty");
            return;
        }

        bool hasTrainedAssistantMessage = false;
        int messageNumber = 0;
        foreach (JsonElement message in messages.EnumerateArray())
        {
            messageNumber++;
            string subject = $"message {messageNumber}: ";
            if (message.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{subject}must be an object, not {KindName(message.ValueKind)}");
                continue;
            }

            string? role = ReadStringProperty(message, "role", subject, problems);
            if (role is not null && !SupportedRoles.Contains(role))
            {
                problems.Add($"{subject}role {Quote(role)} is not supported (use system, user, assistant or tool)");
            }
            bool isAssistant = role == "assistant";
            bool callsTools = isAssistant && CheckToolCalls(message, subject, problems);

            // A turn that only calls tools has no content, as OpenAI writes it.
            if (!(callsTools && IsNullOrAbsent(message, "content")))
            {
                string? content = ReadStringProperty(message, "content", subject, problems);
                if (isAssistant && !callsTools && content is { Length: 0 })
                {
                    problems.Add($"{subject}assistant message with empty content");
                }
            }
            if (role == "tool" && message.TryGetProperty("tool_call_id", out JsonElement toolCallId) && toolCallId.ValueKind != JsonValueKind.String)
            {
                problems.Add($"{subject}\"tool_call_id\" must be a string, not {KindName(toolCallId.ValueKind)}");
            }

            bool isExcluded = CheckWeight(message, subject, isAssistant, problems);
            hasTrainedAssistantMessage |= isAssistant && !isExcluded;
        }
        if (!hasTrainedAssistantMessage)
        {
            // The loss is computed on assistant turns only, so without one the example teaches nothing.
            problems.Add("no assistant message to train on");
        }
    }

    /// <summary>Checks an assistant message's <c>tool_calls</c>; returns whether it has any.</summary>
    private static bool CheckToolCalls(JsonElement message, string subject, List<string> problems)
    {
        if (IsNullOrAbsent(message, "tool_calls"))
        {
            return false;
        }
        JsonElement calls = message.GetProperty("tool_calls");
        if (calls.ValueKind != JsonValueKind.Array || calls.GetArrayLength() == 0)
        {
            problems.Add($"{subject}\"tool_calls\" must be a non-empty array");
            return false;
        }
        int callNumber = 0;
        foreach (JsonElement call in calls.EnumerateArray())
        {
            callNumber++;
            string where = $"{subject}tool call {callNumber}: ";
            if (call.ValueKind != JsonValueKind.Object || !call.TryGetProperty("function", out JsonElement function) || function.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{where}must be an object with a \"function\" object");
                continue;
            }
            ReadStringProperty(function, "name", where, problems);
            if (ReadStringProperty(function, "arguments", where, problems) is { } arguments && !IsJsonObject(arguments))
            {
                problems.Add($"{where}\"arguments\" must be a JSON object written as a string");
            }
        }
        return true;
    }

    /// <summary>An example's optional <c>tools</c>: function tools, each with a name.</summary>
    private static void CheckTools(JsonElement example, List<string> problems)
    {
        if (IsNullOrAbsent(example, "tools"))
        {
            return;
        }
        JsonElement tools = example.GetProperty("tools");
        if (tools.ValueKind != JsonValueKind.Array)
        {
            problems.Add($"\"tools\" must be an array, not {KindName(tools.ValueKind)}");
            return;
        }
        int toolNumber = 0;
        foreach (JsonElement tool in tools.EnumerateArray())
        {
            toolNumber++;
            string where = $"tool {toolNumber}: ";
            if (tool.ValueKind != JsonValueKind.Object || !tool.TryGetProperty("function", out JsonElement function) || function.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{where}must be an object with a \"function\" object");
                continue;
            }
            ReadStringProperty(function, "name", where, problems);
            if (function.TryGetProperty("parameters", out JsonElement parameters) && parameters.ValueKind != JsonValueKind.Object)
            {
                problems.Add($"{where}\"parameters\" must be a JSON schema object, not {KindName(parameters.ValueKind)}");
            }
        }
    }

    private static bool IsNullOrAbsent(JsonElement owner, string name) =>
        !owner.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null;

    private static bool IsJsonObject(string text)
    {
        try
        {
            using JsonDocument document = JsonDocument.Parse(text);
            return document.RootElement.ValueKind == JsonValueKind.Object;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    /// <summary>Returns whether a weight of 0 excludes the message from training.</summary>
    private static bool CheckWeight(JsonElement message, string subject, bool isAssistant, List<string> problems)
    {
        if (!message.TryGetProperty("weight", out JsonElement weight))
        {
            return false;
        }
        if (!isAssistant)
        {
            problems.Add($"{subject}\"weight\" is only allowed on assistant messages");
            return false;
        }
        if (weight.ValueKind != JsonValueKind.Number || !weight.TryGetDouble(out double value) || value is not (0d or 1d))
        {
            problems.Add($"{subject}\"weight\" must be 0 or 1");
            return false;
        }
        return value == 0;
    }

    private static void CheckPromptCompletionExample(JsonElement example, List<string> problems)
    {
        ReadStringProperty(example, "prompt", subject: "", problems);
        if (ReadStringProperty(example, "completion", subject: "", problems) is { Length: 0 })
        {
            problems.Add("\"completion\" is empty");
        }
    }

    /// <summary>Returns the property's string value, or null after adding the reason there is none.</summary>
    private static string? ReadStringProperty(JsonElement owner, string name, string subject, List<string> problems)
    {
        if (!owner.TryGetProperty(name, out JsonElement value))
        {
            problems.Add($"{subject}\"{name}\" is missing");
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            problems.Add($"{subject}\"{name}\" must be a string, not {KindName(value.ValueKind)}");
            return null;
        }
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            // GetString refuses an escaped lone surrogate such as "\ud800"; no tokenizer could encode it either.
            problems.Add($"{subject}\"{name}\" holds an unpaired surrogate escape");
            return null;
        }
    }

    private static int IndexOfInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int index = 0;
        while (Rune.DecodeFromUtf8(bytes[index..], out _, out int consumed) == OperationStatus.Done)
        {
            index += consumed;
        }
        return index;
    }

    /// <summary>
    /// The parser's explanation without its position suffix, which counts lines and bytes from zero
    /// and would contradict the 1-based numbers around it.
    /// </summary>
    private static string ReasonOf(JsonException exception)
    {
        string message = exception.Message;
        int position = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (position < 0 ? message : message[..position]).TrimEnd('.', ' ');
    }

    private static string KindName(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };

    /// <summary>
    /// Quotes a value from the file, cut short so that a huge value cannot swamp the message, and
    /// with control and line-separator characters escaped so that the message stays on one line.
    /// </summary>
    private static string Quote(string value)
    {
        if (value.Length > MaxQuotedChars)
        {
            int keep = char.IsHighSurrogate(value[MaxQuotedChars - 1]) ? MaxQuotedChars - 1 : MaxQuotedChars;
            value = value[..keep] + "...";
        }
        return $"\"{Printable(value)}\"";
    }

    private static string Printable(string text)
    {
        if (!text.Any(IsLineBreakingOrControl))
        {
            return text;
        }
        var printable = new StringBuilder(text.Length + 8);
        foreach (char character in text)
        {
            if (IsLineBreakingOrControl(character))
            {
                printable.Append($"\\u{(int)character:x4}");
            }
            else
            {
                printable.Append(character);
            }
        }
        return printable.ToString();
    }

    private static bool IsLineBreakingOrControl(char character) =>
        char.IsControl(character) || character is '\u2028' or '\u2029';
}
