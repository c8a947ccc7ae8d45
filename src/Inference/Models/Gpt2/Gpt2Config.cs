using System.Text.Json;
using System.Text.Json.Serialization;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Safetensors;

namespace LlmServer.Inference.Models.Gpt2;

/// <summary>The fields of a Hugging Face GPT-2 <c>config.json</c> that shape the network.</summary>
public sealed record Gpt2Config : IKvCacheShape
{
    [JsonPropertyName("model_type")] public string ModelType { get; init; } = "gpt2";
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 50257;
    [JsonPropertyName("n_positions")] public int MaxPositions { get; init; } = 1024;
    [JsonPropertyName("n_embd")] public int EmbeddingSize { get; init; } = 768;
    [JsonPropertyName("n_layer")] public int LayerCount { get; init; } = 12;
    [JsonPropertyName("n_head")] public int HeadCount { get; init; } = 12;
    // null means 4 * n_embd, as in transformers' GPT2Config.
    [JsonPropertyName("n_inner")] public int? InnerSize { get; init; }
    [JsonPropertyName("layer_norm_epsilon")] public double LayerNormEpsilon { get; init; } = 1e-5;
    [JsonPropertyName("activation_function")] public string ActivationFunction { get; init; } = "gelu_new";
    [JsonPropertyName("eos_token_id")] public int? EosTokenId { get; init; } = 50256;
    [JsonPropertyName("bos_token_id")] public int? BosTokenId { get; init; } = 50256;
    [JsonPropertyName("tie_word_embeddings")] public bool TieWordEmbeddings { get; init; } = true;
    [JsonPropertyName("scale_attn_weights")] public bool ScaleAttentionWeights { get; init; } = true;
    [JsonPropertyName("scale_attn_by_inverse_layer_idx")] public bool ScaleAttentionByInverseLayerIndex { get; init; }
    [JsonPropertyName("reorder_and_upcast_attn")] public bool ReorderAndUpcastAttention { get; init; }

    [JsonIgnore] public int FeedForwardSize => InnerSize ?? 4 * EmbeddingSize;
    [JsonIgnore] public int HeadSize => EmbeddingSize / HeadCount;

    // GPT-2 has no grouped-query attention: every query head has its own keys and values.
    int IKvCacheShape.KvHeadCount => HeadCount;

    private static readonly string[] SupportedActivations = ["gelu_new", "gelu", "gelu_pytorch_tanh", "relu"];

    /// <summary>Reads and checks <c>config.json</c>; every problem is one line naming the file.</summary>
    public static Gpt2Config Load(string configPath)
    {
        // Every GPT-2 field has transformers' GPT2Config default, so no key is required.
        Gpt2Config config = ModelConfigFile.Read<Gpt2Config>(configPath, requiredKeys: [], "gpt2");
        config.Validate(configPath);
        return config;
    }

    public void Validate(string configPath)
    {
        if (ModelType != "gpt2")
        {
            throw new CheckpointFormatException(configPath, $"unsupported model_type '{ModelType}' (this server runs 'gpt2')");
        }
        if (VocabSize <= 0 || MaxPositions <= 0 || EmbeddingSize <= 0 || LayerCount <= 0 || HeadCount <= 0 || FeedForwardSize <= 0)
        {
            throw new CheckpointFormatException(configPath, "vocab_size, n_positions, n_embd, n_layer, n_head and n_inner must be positive");
        }
        if (EmbeddingSize % HeadCount != 0)
        {
            throw new CheckpointFormatException(configPath, $"n_embd {EmbeddingSize} is not divisible by n_head {HeadCount}");
        }
        if (!SupportedActivations.Contains(ActivationFunction))
        {
            throw new CheckpointFormatException(configPath,
                $"unsupported activation_function '{ActivationFunction}' (supported: {string.Join(", ", SupportedActivations)})");
        }
        if (ScaleAttentionByInverseLayerIndex || !ScaleAttentionWeights)
        {
            throw new CheckpointFormatException(configPath, "only the standard 1/sqrt(head size) attention scaling is supported");
        }
    }

    /// <summary>Parameter count of the network (tied lm_head counted once).</summary>
    public long ParameterCount()
    {
        long c = EmbeddingSize, f = FeedForwardSize;
        long perLayer = 2 * 2 * c                 // ln_1, ln_2
            + c * 3 * c + 3 * c + c * c + c        // attention c_attn, c_proj
            + c * f + f + f * c + c;               // mlp c_fc, c_proj
        return (long)VocabSize * c + (long)MaxPositions * c + LayerCount * perLayer + 2 * c;
    }
}
