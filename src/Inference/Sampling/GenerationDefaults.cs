using System.Globalization;
using System.Text.Json;

namespace LlmServer.Inference.Sampling;

/// <summary>
/// The sampling defaults a model's creator recommends in <c>generation_config.json</c> (Llama 3.2 Instruct:
/// temperature 0.6, top_p 0.9; Qwen2.5 Instruct: temperature 0.7, top_p 0.8, top_k 20), applied to a
/// request that leaves the parameter out. This is vLLM's <c>--generation-config auto</c>: of the file it
/// reads only <c>temperature</c>, <c>top_p</c>, <c>top_k</c>, <c>min_p</c>, <c>repetition_penalty</c> and
/// <c>max_new_tokens</c> (as the default max tokens); a request's own value always wins.
/// </summary>
/// <remarks>
/// Like vLLM, <c>do_sample</c> is not read: <c>do_sample: false</c> beside a temperature does not make the
/// server greedy, the temperature applies. <c>min_p</c> and <c>repetition_penalty</c> have no counterpart in
/// <see cref="Sampler"/>; a value other than their neutral one is listed in <see cref="NotApplied"/> so that
/// the server can say so at load instead of sampling differently from vLLM in silence.
/// </remarks>
public sealed record GenerationDefaults
{
    public const string FileName = "generation_config.json";

    /// <summary>No file, or <c>--generation-config vllm</c>: every parameter has the server's neutral default.</summary>
    public static GenerationDefaults None { get; } = new();

    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    /// <summary>As the file has it: 0 or -1 mean no top-k cut.</summary>
    public int? TopK { get; init; }
    /// <summary>
    /// <c>max_new_tokens</c>: the completion length a chat request gets when it names none (capped by the
    /// context window). Completions keep 16, OpenAI's documented default, which vLLM's completion request
    /// also has, so there too the file's value is not reached.
    /// </summary>
    public int? MaxTokens { get; init; }

    /// <summary>Parameters the file sets that this server's sampler does not have, with their values.</summary>
    public IReadOnlyDictionary<string, double> NotApplied { get; init; } = new Dictionary<string, double>();

    public bool IsEmpty => Temperature is null && TopP is null && TopK is null && MaxTokens is null && NotApplied.Count == 0;

    /// <summary>The request's temperature, else the file's, else 1 (OpenAI's and vLLM's default).</summary>
    public double TemperatureFor(double? requested) => requested ?? Temperature ?? 1.0;

    /// <summary>The request's top_p, else the file's, else 1 (no nucleus cut).</summary>
    public double TopPFor(double? requested) => requested ?? TopP ?? 1.0;

    /// <summary>The request's top_k, else the file's, else 0 (no cut).</summary>
    public int TopKFor(int? requested) => requested ?? TopK ?? 0;

    /// <summary>The defaults this server applies, as "temperature 0.6, top_p 0.9", for the load log; null when none.</summary>
    public string? AppliedSummary
    {
        get
        {
            var parts = new List<string>();
            Add("temperature", Temperature);
            Add("top_p", TopP);
            Add("top_k", TopK);
            Add("max_new_tokens", MaxTokens);
            return parts.Count == 0 ? null : string.Join(", ", parts);

            void Add(string name, double? value)
            {
                if (value is { } set)
                {
                    parts.Add($"{name} {set.ToString(CultureInfo.InvariantCulture)}");
                }
            }
        }
    }

    /// <summary>The parameters the file sets that the sampler lacks, as "repetition_penalty 1.05", for the load log; null when none.</summary>
    public string? NotAppliedSummary => NotApplied.Count == 0
        ? null
        : string.Join(", ", NotApplied.Select(p => $"{p.Key} {p.Value.ToString(CultureInfo.InvariantCulture)}"));

    /// <summary>
    /// Reads <c>generation_config.json</c> from a model directory; <see cref="None"/> when there is none.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not JSON, or a sampling key holds something no
    /// sampler can use; the one-line message names the file, the key and the value.</exception>
    public static GenerationDefaults Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return None;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            return Read(document.RootElement, path);
        }
    }

    /// <summary>The defaults a parsed <c>generation_config.json</c> sets; <paramref name="path"/> names it in errors.</summary>
    public static GenerationDefaults Read(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{path}: expected a JSON object, got {root.ValueKind.ToString().ToLowerInvariant()}");
        }

        var notApplied = new Dictionary<string, double>();
        // A key set to null is absent, as vLLM's `config.get(p) is not None` has it.
        double? minP = Number(root, "min_p", path, value => value is >= 0 and <= 1, "a number from 0 to 1");
        if (minP is > 0)
        {
            notApplied["min_p"] = minP.Value;
        }
        double? repetitionPenalty = Number(root, "repetition_penalty", path, value => value > 0, "a positive number");
        if (repetitionPenalty is not null and not 1.0)
        {
            notApplied["repetition_penalty"] = repetitionPenalty.Value;
        }

        return new GenerationDefaults
        {
            Temperature = Number(root, "temperature", path, value => value >= 0, "a number of at least 0"),
            TopP = Number(root, "top_p", path, value => value is > 0 and <= 1, "a number above 0 and at most 1"),
            TopK = Integer(root, "top_k", path, -1, "-1, 0 (no cut) or a positive count"),
            MaxTokens = Integer(root, "max_new_tokens", path, 1, "a positive count"),
            NotApplied = notApplied,
        };
    }

    private static double? Number(JsonElement root, string key, string path, Func<double, bool> isValid, string expected)
    {
        if (!root.TryGetProperty(key, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double number) && double.IsFinite(number) && isValid(number))
        {
            return number;
        }
        throw new InvalidDataException($"{path}: {key} holds {value.GetRawText()}; it must be {expected}");
    }

    private static int? Integer(JsonElement root, string key, string path, int minimum, string expected)
    {
        if (!root.TryGetProperty(key, out JsonElement value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int number) && number >= minimum)
        {
            return number;
        }
        throw new InvalidDataException($"{path}: {key} holds {value.GetRawText()}; it must be {expected}");
    }
}
