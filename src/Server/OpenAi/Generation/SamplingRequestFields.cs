using System.Text.Json;

namespace LlmServer.OpenAi.Generation;

/// <summary>Request fields shared by completions and chat completions, OpenAI's and vLLM's extensions.</summary>
public abstract record SamplingRequestFields
{
    public int? MaxTokens { get; init; }
    public double? Temperature { get; init; }
    public double? TopP { get; init; }
    public int? N { get; init; }
    public bool? Stream { get; init; }
    public StreamOptions? StreamOptions { get; init; }
    public JsonElement Stop { get; init; }
    public long? Seed { get; init; }
    public double? PresencePenalty { get; init; }
    public double? FrequencyPenalty { get; init; }
    public Dictionary<string, double>? LogitBias { get; init; }
    public string? User { get; init; }
    // vLLM's extensions, used by benchmarks and power users.
    public int? TopK { get; init; }
    public int? MinTokens { get; init; }
    public bool? IgnoreEos { get; init; }
    public IReadOnlyList<int>? StopTokenIds { get; init; }
}
