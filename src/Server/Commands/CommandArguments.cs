using System.Globalization;
using LlmServer.Host;
using LlmServer.Inference.Models.Safetensors;
using LlmServer.Training.Checkpoints;

namespace LlmServer.Commands;

/// <summary>
/// The <c>--flag value</c> / <c>--flag=value</c> / <c>--switch</c> arguments of the offline commands
/// (train, fine-tune, demo-corpus, eval). Every mistake is a <see cref="CommandLineException"/>
/// whose message names the flag, so the command prints one line and exits 2.
/// </summary>
public sealed class CommandArguments
{
    private readonly Dictionary<string, string> _values;
    private readonly HashSet<string> _switches;

    private CommandArguments(Dictionary<string, string> values, HashSet<string> switches)
    {
        _values = values;
        _switches = switches;
    }

    public static CommandArguments Parse(IReadOnlyList<string> args, IReadOnlyCollection<string> valueFlags, IReadOnlyCollection<string> switchFlags)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        var switches = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (switchFlags.Contains(arg))
            {
                switches.Add(arg);
                continue;
            }
            int equals = arg.IndexOf('=');
            string name = equals > 0 ? arg[..equals] : arg;
            if (!valueFlags.Contains(name))
            {
                throw new CommandLineException($"unknown argument '{arg}' (see --help)");
            }
            if (equals > 0)
            {
                values[name] = arg[(equals + 1)..];
            }
            else if (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                values[name] = args[++i];
            }
            else
            {
                throw new CommandLineException($"{name} needs a value");
            }
        }
        return new CommandArguments(values, switches);
    }

    /// <summary>
    /// Runs an offline command: --help prints <paramref name="help"/>; a bad flag, a missing file or
    /// unusable data is one "error: ..." line and exit code 2, never a stack trace.
    /// </summary>
    public static int RunCommand(IReadOnlyList<string> args, string help, IReadOnlyCollection<string> valueFlags,
        IReadOnlyCollection<string> switchFlags, Func<CommandArguments, int> command)
    {
        if (args.Contains("--help") || args.Contains("-h"))
        {
            Console.WriteLine(help);
            return 0;
        }
        try
        {
            return command(Parse(args, valueFlags, switchFlags));
        }
        catch (Exception e) when (e is CommandLineException or ArgumentException or InvalidDataException or FileNotFoundException
            or DirectoryNotFoundException or CheckpointFormatException)
        {
            // CheckpointFormatException: a model flag set that makes no GPT-2 (--width not divisible by --heads), or an unreadable --model.
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    /// <summary><paramref name="path"/> (the value of <paramref name="flag"/>) when that file exists.</summary>
    public static string ExistingFile(string path, string flag) =>
        File.Exists(path) ? path : throw new CommandLineException($"{flag}: no file {path}");

    /// <summary>
    /// With --resume, the newest checkpoint under <paramref name="output"/> (one must exist); without
    /// it, null, and <paramref name="output"/> must hold no earlier run's checkpoints to mix with.
    /// </summary>
    public string? ResumeCheckpoint(string output)
    {
        bool hasCheckpoints = Directory.Exists(Path.Combine(output, "checkpoints"));
        if (!Has("--resume"))
        {
            return hasCheckpoints
                ? throw new CommandLineException($"{output} already holds a run's checkpoints: add --resume to continue it, or choose another --out")
                : null;
        }
        return CheckpointDirectories.Latest(output)
            ?? throw new CommandLineException($"--resume: no checkpoint under {Path.Combine(output, "checkpoints")}");
    }

    public bool Has(string flag) => _values.ContainsKey(flag) || _switches.Contains(flag);

    public string? String(string flag) => _values.GetValueOrDefault(flag);

    public string Required(string flag) => _values.GetValueOrDefault(flag) ?? throw new CommandLineException($"{flag} is required (see --help)");

    public int Int(string flag, int fallback) => Number(flag, fallback, int.TryParse);

    public long Long(string flag, long fallback) => Number(flag, fallback, long.TryParse);

    public double Double(string flag, double fallback) => Number(flag, fallback, double.TryParse);

    private delegate bool Parser<T>(string text, NumberStyles styles, IFormatProvider provider, out T value);

    private T Number<T>(string flag, T fallback, Parser<T> parse)
    {
        if (!_values.TryGetValue(flag, out string? text))
        {
            return fallback;
        }
        return parse(text, NumberStyles.Float | NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out T value)
            ? value
            : throw new CommandLineException($"{flag}: '{text}' is not a number");
    }
}
