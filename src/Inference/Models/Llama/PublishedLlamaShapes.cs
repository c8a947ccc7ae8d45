using System.Text.Json;

namespace LlmServer.Inference.Models.Llama;

/// <summary>
/// The network fields of the config.json files these families publish on Hugging Face, exactly, by
/// model_type and size, so that a random-weight checkpoint costs what the real model costs to run.
/// "tiny" (2 layers, 64 wide, grouped-query attention, GPT-2's vocabulary padded to a multiple of
/// 64) exists per family for tests and quick trials.
/// </summary>
public static class PublishedLlamaShapes
{
    private sealed record Published(string ModelType, string[] Names, string Source, LlamaConfig Config);

    private static JsonElement Ids(params int[] ids) =>
        ids.Length == 1 ? JsonSerializer.SerializeToElement(ids[0]) : JsonSerializer.SerializeToElement(ids);

    private static LlamaConfig Tiny(string modelType) => new()
    {
        ModelType = modelType, VocabSize = 50304, HiddenSize = 64, IntermediateSize = 128, LayerCount = 2,
        HeadCount = 4, KeyValueHeadCount = 2,
        // Qwen3's head_dim is its own field, independent of hidden_size / heads, as in Qwen3-0.6B.
        HeadDim = modelType == "qwen3" ? 32 : null,
        RmsNormEpsilon = 1e-6, RopeTheta = 10000.0, MaxPositions = 1024, TieWordEmbeddings = true,
    };

    private static readonly Published[] Known =
    [
        new("llama", ["1B", "llama-3.2-1b"], "meta-llama/Llama-3.2-1B-Instruct", new LlamaConfig
        {
            ModelType = "llama", VocabSize = 128256, HiddenSize = 2048, IntermediateSize = 8192, LayerCount = 16,
            HeadCount = 32, KeyValueHeadCount = 8, HeadDim = 64, RmsNormEpsilon = 1e-5, RopeTheta = 500000.0,
            RopeScaling = new RopeScaling
            {
                RopeType = "llama3", Factor = 32.0, LowFrequencyFactor = 1.0, HighFrequencyFactor = 4.0, OriginalMaxPositions = 8192,
            },
            MaxPositions = 131072, TieWordEmbeddings = true, BosTokenId = 128000, EosTokenId = Ids(128001, 128008, 128009),
        }),
        new("llama", ["360M", "smollm2-360m"], "HuggingFaceTB/SmolLM2-360M-Instruct", new LlamaConfig
        {
            ModelType = "llama", VocabSize = 49152, HiddenSize = 960, IntermediateSize = 2560, LayerCount = 32,
            HeadCount = 15, KeyValueHeadCount = 5, HeadDim = 64, RmsNormEpsilon = 1e-5, RopeTheta = 100000.0,
            MaxPositions = 8192, TieWordEmbeddings = true, BosTokenId = 1, EosTokenId = Ids(2),
        }),
        // v0.3: no sliding window (v0.1's 4096-token window is refused by the loader).
        new("mistral", ["7B", "mistral-7b-v0.3"], "mistralai/Mistral-7B-Instruct-v0.3", new LlamaConfig
        {
            ModelType = "mistral", VocabSize = 32768, HiddenSize = 4096, IntermediateSize = 14336, LayerCount = 32,
            HeadCount = 32, KeyValueHeadCount = 8, RmsNormEpsilon = 1e-5, RopeTheta = 1000000.0,
            MaxPositions = 32768, TieWordEmbeddings = false, BosTokenId = 1, EosTokenId = Ids(2),
        }),
        new("qwen2", ["0.5B", "qwen2.5-0.5b"], "Qwen/Qwen2.5-0.5B-Instruct", new LlamaConfig
        {
            ModelType = "qwen2", VocabSize = 151936, HiddenSize = 896, IntermediateSize = 4864, LayerCount = 24,
            HeadCount = 14, KeyValueHeadCount = 2, RmsNormEpsilon = 1e-6, RopeTheta = 1000000.0,
            MaxPositions = 32768, SlidingWindow = 32768, UseSlidingWindow = false, TieWordEmbeddings = true,
            BosTokenId = 151643, EosTokenId = Ids(151645),
        }),
        new("qwen3", ["0.6B", "qwen3-0.6b"], "Qwen/Qwen3-0.6B", new LlamaConfig
        {
            ModelType = "qwen3", VocabSize = 151936, HiddenSize = 1024, IntermediateSize = 3072, LayerCount = 28,
            HeadCount = 16, KeyValueHeadCount = 8, HeadDim = 128, RmsNormEpsilon = 1e-6, RopeTheta = 1000000.0,
            MaxPositions = 40960, TieWordEmbeddings = true, BosTokenId = 151643, EosTokenId = Ids(151645),
        }),
        new("llama", ["tiny"], "tiny", Tiny("llama")),
        new("mistral", ["tiny"], "tiny", Tiny("mistral")),
        new("qwen2", ["tiny"], "tiny", Tiny("qwen2")),
        new("qwen3", ["tiny"], "tiny", Tiny("qwen3")),
    ];

    /// <summary>The size names of <paramref name="modelType"/>, first name of each: "1B, 360M, tiny".</summary>
    public static IReadOnlyList<string> Names(string modelType) =>
        Known.Where(p => p.ModelType == modelType).Select(p => p.Names[0]).ToArray();

    /// <summary>The config.json fields of <paramref name="modelType"/>'s published size <paramref name="name"/> (case-insensitive).</summary>
    public static LlamaConfig Get(string modelType, string name)
    {
        Published? found = Known.FirstOrDefault(p => p.ModelType == modelType && p.Names.Contains(name, StringComparer.OrdinalIgnoreCase));
        return found?.Config ?? throw new ArgumentException(
            $"unknown {modelType} shape '{name}' ({string.Join(", ", Names(modelType))})");
    }

    /// <summary>The Hugging Face repository a shape is copied from ("Qwen/Qwen2.5-0.5B-Instruct"), for messages.</summary>
    public static string SourceOf(string modelType, string name) =>
        Known.First(p => p.ModelType == modelType && p.Names.Contains(name, StringComparer.OrdinalIgnoreCase)).Source;
}
