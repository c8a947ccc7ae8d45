using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Safetensors;

namespace LlmServer.Inference.Models.Llama;

/// <summary>
/// The fields of a Hugging Face Llama-family <c>config.json</c> (LlamaForCausalLM, MistralForCausalLM,
/// Qwen2ForCausalLM, Qwen3ForCausalLM) that shape the network. The families differ by flags:
/// Qwen2 has biases on q, k and v; Qwen3 normalizes each query and key head before RoPE.
/// </summary>
public sealed record LlamaConfig : IKvCacheShape
{
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "llama";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 32000;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 4096;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 11008;
    [JsonPropertyName("num_hidden_layers")] public int LayerCount { get; init; } = 32;
    [JsonPropertyName("num_attention_heads")] public int HeadCount { get; init; } = 32;
    // null means num_attention_heads (no grouped-query attention), as in transformers.
    [JsonPropertyName("num_key_value_heads")] public int? KeyValueHeadCount { get; init; }
    // null means hidden_size / num_attention_heads; Qwen3 sets it independently.
    [JsonPropertyName("head_dim")] public int? HeadDim { get; init; }
    [JsonPropertyName("rms_norm_eps")] public double RmsNormEpsilon { get; init; } = 1e-6;
    [JsonPropertyName("rope_theta")] public double RopeTheta { get; init; } = 10000.0;
    [JsonPropertyName("rope_scaling")] public RopeScaling? RopeScaling { get; init; }
    [JsonPropertyName("max_position_embeddings")] public int MaxPositions { get; init; } = 2048;
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; }
    // Llama and Mistral: biases on all four projections when true; Qwen2 always has q, k, v biases.
    [JsonPropertyName("attention_bias")] public bool AttentionBias { get; init; }
    [JsonPropertyName("mlp_bias")] public bool MlpBias { get; init; }
    [JsonPropertyName("hidden_act")] public string HiddenActivation { get; init; } = "silu";
    [JsonPropertyName("sliding_window")] public int? SlidingWindow { get; init; }
    // Qwen2/Qwen3 write sliding_window but only apply it when use_sliding_window is true.
    [JsonPropertyName("use_sliding_window")] public bool? UseSlidingWindow { get; init; }
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; }
    [JsonPropertyName("eos_token_id")] public JsonElement? EosTokenId { get; init; }

    public static readonly string[] SupportedModelTypes = ["llama", "mistral", "qwen2", "qwen3"];

    int IKvCacheShape.LayerCount => LayerCount;
    [JsonIgnore] public int KvHeadCount => KeyValueHeadCount ?? HeadCount;
    [JsonIgnore] public int HeadSize => HeadDim ?? HiddenSize / HeadCount;

    /// <summary>Qwen2's q, k and v projections carry biases; Llama's and Mistral's only with attention_bias.</summary>
    [JsonIgnore] public bool QkvBias => AttentionBias || ModelType == "qwen2";

    /// <summary>o_proj carries a bias only under attention_bias (Qwen2 has none there).</summary>
    [JsonIgnore] public bool OutputBias => AttentionBias && ModelType != "qwen2";

    /// <summary>Qwen3 normalizes every query and key head (RMSNorm over head_dim) before RoPE.</summary>
    [JsonIgnore] public bool QkNorm => ModelType == "qwen3";

    /// <summary>Every id in eos_token_id (a number or a list).</summary>
    [JsonIgnore]
    public IReadOnlyList<int> EosTokenIds => EosTokenId switch
    {
        { ValueKind: JsonValueKind.Number } id => [id.GetInt32()],
        { ValueKind: JsonValueKind.Array } ids => ids.EnumerateArray().Select(e => e.GetInt32()).ToArray(),
        _ => [],
    };

    /// <summary>The config.json a checkpoint of this shape carries, as transformers writes it: these fields and <c>architectures</c>.</summary>
    public JsonObject ToCheckpointJson()
    {
        JsonObject json = JsonSerializer.SerializeToNode(this, new JsonSerializerOptions { DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull })!.AsObject();
        json["architectures"] = new JsonArray(ModelArchitectures.ClassNameOf(ModelType));
        return json;
    }

    /// <summary>
    /// The keys without which a config.json does not describe a network. transformers would fill them
    /// with Llama-2-7B's defaults and then fail on the weights; naming the key is the useful message.
    /// </summary>
    public static readonly string[] RequiredKeys = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"];

    /// <summary>Reads and checks <c>config.json</c>; every problem is one line naming the file.</summary>
    public static LlamaConfig Load(string configPath)
    {
        LlamaConfig config = ModelConfigFile.Read<LlamaConfig>(configPath, RequiredKeys, "Llama-family");
        config.Validate(configPath);
        return config;
    }

    public void Validate(string configPath)
    {
        if (!SupportedModelTypes.Contains(ModelType))
        {
            throw new CheckpointFormatException(configPath,
                $"unsupported model_type '{ModelType}' (this loader runs {string.Join(", ", SupportedModelTypes)})");
        }
        if (VocabSize <= 0 || HiddenSize <= 0 || IntermediateSize <= 0 || LayerCount <= 0 || HeadCount <= 0 || KvHeadCount <= 0 || HeadSize <= 0 || MaxPositions <= 0)
        {
            throw new CheckpointFormatException(configPath,
                "vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim and max_position_embeddings must be positive");
        }
        if (HeadDim is null && HiddenSize % HeadCount != 0)
        {
            throw new CheckpointFormatException(configPath, $"hidden_size {HiddenSize} is not divisible by num_attention_heads {HeadCount} and there is no head_dim");
        }
        if (HeadCount % KvHeadCount != 0)
        {
            throw new CheckpointFormatException(configPath, $"num_attention_heads {HeadCount} is not a multiple of num_key_value_heads {KvHeadCount}");
        }
        if (HeadSize % 2 != 0)
        {
            throw new CheckpointFormatException(configPath, $"head_dim {HeadSize} is odd; rotary embeddings rotate pairs");
        }
        if (HiddenActivation != "silu")
        {
            throw new CheckpointFormatException(configPath, $"unsupported hidden_act '{HiddenActivation}' (supported: silu)");
        }
        if (MlpBias)
        {
            throw new CheckpointFormatException(configPath, "mlp_bias true is not supported");
        }
        // Mistral applies its window whenever it is set; Qwen only under use_sliding_window.
        bool windowApplies = ModelType == "mistral" ? SlidingWindow is not null : UseSlidingWindow == true && SlidingWindow is not null;
        if (windowApplies && SlidingWindow < MaxPositions)
        {
            throw new CheckpointFormatException(configPath,
                $"sliding_window {SlidingWindow} is smaller than max_position_embeddings {MaxPositions}; sliding-window attention is not supported");
        }
        RopeScaling?.Validate(configPath);
    }
}

/// <summary>
/// config.json's <c>rope_scaling</c>: "llama3" (Llama 3.1/3.2 frequency bands) or "linear" (positions
/// divided by factor). Older configs spell rope_type as "type".
/// </summary>
public sealed record RopeScaling
{
    [JsonPropertyName("rope_type")] public string? RopeType { get; init; }
    [JsonPropertyName("type")] public string? LegacyType { get; init; }
    [JsonPropertyName("factor")] public double Factor { get; init; } = 1.0;
    [JsonPropertyName("low_freq_factor")] public double LowFrequencyFactor { get; init; } = 1.0;
    [JsonPropertyName("high_freq_factor")] public double HighFrequencyFactor { get; init; } = 4.0;
    [JsonPropertyName("original_max_position_embeddings")] public int OriginalMaxPositions { get; init; } = 8192;

    public static readonly string[] SupportedTypes = ["default", "llama3", "linear"];

    [JsonIgnore] public string Type => RopeType ?? LegacyType ?? "default";

    public void Validate(string configPath)
    {
        if (!SupportedTypes.Contains(Type))
        {
            throw new CheckpointFormatException(configPath,
                $"unsupported rope_scaling type '{Type}' (supported: {string.Join(", ", SupportedTypes)})");
        }
        if (Type != "default" && Factor <= 0)
        {
            throw new CheckpointFormatException(configPath, $"rope_scaling factor {Factor} must be positive");
        }
        if (Type == "llama3" && HighFrequencyFactor == LowFrequencyFactor)
        {
            throw new CheckpointFormatException(configPath, "rope_scaling high_freq_factor must differ from low_freq_factor");
        }
    }
}
