namespace LlmServer.Inference.Models.Safetensors;

/// <summary>A checkpoint file (weights or config) that cannot be used as it is.</summary>
/// <remarks>The message is one line, "&lt;path&gt;: &lt;problem&gt;", so that it reads well in a log
/// or a startup failure without a stack trace.</remarks>
public sealed class CheckpointFormatException : Exception
{
    public CheckpointFormatException(string path, string problem)
        : this(path, problem, innerException: null)
    {
    }

    public CheckpointFormatException(string path, string problem, Exception? innerException)
        : base($"{path}: {OneLine(problem)}", innerException)
    {
        FilePath = path;
        Problem = OneLine(problem);
    }

    public string FilePath { get; }

    public string Problem { get; }

    // Problems often quote parser messages, which may span lines.
    private static string OneLine(string text) =>
        string.Join(' ', text.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
