using System.Text.Json.Nodes;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Layers;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using Linear = LlmServer.Inference.Models.Layers.Linear;

namespace LlmServer.Inference.Models.Llama;

// The Llama family (Llama 2/3, SmolLM2, Mistral, Qwen2, Qwen3), top-down in the order of nanoGPT's
// model.py: attention, MLP, block, model. Fields are named after the checkpoint keys, so
// "model.layers.3.self_attn.q_proj.weight" is model.layers[3].self_attn.q_proj's weight and
// state_dict() keys are exactly the checkpoint's.
//
// The families differ by flags on LlamaConfig: Qwen2's q/k/v biases (QkvBias), Qwen3's per-head
// q_norm/k_norm before RoPE (QkNorm), head_dim independent of hidden_size / heads (HeadSize).
//
// Serving and training run the same forward, as GPT-2's: only the IAttentionBackend differs
// (PagedAttention over the paged KV cache, or CausalAttention over whole sequences). Queries and
// keys are rotated before the backend sees them, so the cache holds rotated keys. The backend gets
// num_key_value_heads key/value heads: under grouped-query attention query head h reads KV head
// h / (heads / kv_heads), and the cache stores only the KV heads.

/// <summary>Grouped-query causal self-attention with rotary embeddings.</summary>
public sealed class LlamaAttention : Module
{
    private readonly Linear q_proj;
    private readonly Linear k_proj;
    private readonly Linear v_proj;
    private readonly Linear o_proj;
    private readonly RmsNorm? q_norm;
    private readonly RmsNorm? k_norm;
    private readonly int _layer;
    private readonly int _headCount;
    private readonly int _kvHeadCount;
    private readonly int _headSize;

    public LlamaAttention(LlamaConfig config, ScalarType dtype, Device device, int layer) : base("self_attn")
    {
        _layer = layer;
        _headCount = config.HeadCount;
        _kvHeadCount = config.KvHeadCount;
        _headSize = config.HeadSize;
        int c = config.HiddenSize, queryWidth = _headCount * _headSize, kvWidth = _kvHeadCount * _headSize;
        string path = $"model.layers.{layer}.self_attn";
        q_proj = new Linear(c, queryWidth, config.QkvBias, dtype, device, $"{path}.q_proj");
        k_proj = new Linear(c, kvWidth, config.QkvBias, dtype, device, $"{path}.k_proj");
        v_proj = new Linear(c, kvWidth, config.QkvBias, dtype, device, $"{path}.v_proj");
        o_proj = new Linear(queryWidth, c, config.OutputBias, dtype, device, $"{path}.o_proj");
        if (config.QkNorm)
        {
            q_norm = new RmsNorm(_headSize, config.RmsNormEpsilon, dtype, device);
            k_norm = new RmsNorm(_headSize, config.RmsNormEpsilon, dtype, device);
        }
        RegisterComponents();
    }

    /// <param name="x">(N, C) in serving, (B, T, C) in training: "..." below.</param>
    /// <param name="cos">The tokens' rotary cos rows, (N, 1, hs) or (T, 1, hs); <paramref name="sin"/> likewise.</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, IAttentionBackend attention, AdapterRouting? adapters = null)
    {
        long[] leading = x.shape[..^1];
        using Tensor qFlat = q_proj.Forward(x, adapters);                                // (..., nh * hs)
        using Tensor kFlat = k_proj.Forward(x, adapters);                                // (..., n_kv * hs)
        using Tensor vFlat = v_proj.Forward(x, adapters);                                // (..., n_kv * hs)
        using Tensor q = qFlat.view([.. leading, _headCount, _headSize]);                // (..., nh, hs)
        using Tensor k = kFlat.view([.. leading, _kvHeadCount, _headSize]);              // (..., n_kv, hs)
        using Tensor v = vFlat.view([.. leading, _kvHeadCount, _headSize]);              // (..., n_kv, hs)
        using Tensor qNormed = q_norm is null ? q.alias() : q_norm.Forward(q);           // (..., nh, hs)
        using Tensor kNormed = k_norm is null ? k.alias() : k_norm.Forward(k);           // (..., n_kv, hs)
        using Tensor qRotated = RotaryEmbedding.Rotate(qNormed, cos, sin);               // (..., nh, hs)
        using Tensor kRotated = RotaryEmbedding.Rotate(kNormed, cos, sin);               // (..., n_kv, hs)
        using Tensor y = attention.Attend(_layer, qRotated, kRotated, v);                // (..., nh * hs)
        return o_proj.Forward(y, adapters);                                              // (..., C)
    }
}

/// <summary>The SwiGLU feed-forward network: down(silu(gate(x)) * up(x)).</summary>
public sealed class LlamaMlp : Module
{
    private readonly Linear gate_proj;
    private readonly Linear up_proj;
    private readonly Linear down_proj;

    public LlamaMlp(LlamaConfig config, ScalarType dtype, Device device, int layer) : base("mlp")
    {
        int c = config.HiddenSize, f = config.IntermediateSize;
        string path = $"model.layers.{layer}.mlp";
        gate_proj = new Linear(c, f, hasBias: false, dtype, device, $"{path}.gate_proj");
        up_proj = new Linear(c, f, hasBias: false, dtype, device, $"{path}.up_proj");
        down_proj = new Linear(f, c, hasBias: false, dtype, device, $"{path}.down_proj");
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AdapterRouting? adapters = null)
    {
        using Tensor gate = gate_proj.Forward(x, adapters);                              // (..., F)
        using Tensor up = up_proj.Forward(x, adapters);                                  // (..., F)
        using Tensor activated = functional.silu(gate);                                  // (..., F)
        using Tensor gated = activated.mul(up);                                          // (..., F)
        return down_proj.Forward(gated, adapters);                                       // (..., C)
    }
}

/// <summary>A pre-norm decoder layer: x + attn(input_layernorm(x)), then x + mlp(post_attention_layernorm(x)).</summary>
public sealed class LlamaDecoderLayer : Module
{
    private readonly RmsNorm input_layernorm;
    private readonly LlamaAttention self_attn;
    private readonly RmsNorm post_attention_layernorm;
    private readonly LlamaMlp mlp;

    public LlamaDecoderLayer(LlamaConfig config, ScalarType dtype, Device device, int layer) : base("layer")
    {
        input_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon, dtype, device);
        self_attn = new LlamaAttention(config, dtype, device, layer);
        post_attention_layernorm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon, dtype, device);
        mlp = new LlamaMlp(config, dtype, device, layer);
        RegisterComponents();
    }

    /// <param name="x">(N, C) in serving, (B, T, C) in training.</param>
    public Tensor Forward(Tensor x, Tensor cos, Tensor sin, IAttentionBackend attention, AdapterRouting? adapters = null)
    {
        using Tensor normed = input_layernorm.Forward(x);
        using Tensor attended = self_attn.Forward(normed, cos, sin, attention, adapters);
        using Tensor afterAttention = x.add(attended);                                   // (..., C)
        using Tensor normedAgain = post_attention_layernorm.Forward(afterAttention);
        using Tensor transformed = mlp.Forward(normedAgain, adapters);
        return afterAttention.add(transformed);                                          // (..., C)
    }
}

/// <summary>Hugging Face's inner LlamaModel ("model." in the keys): embeddings, the layers, the final norm.</summary>
public sealed class LlamaDecoder : Module
{
    private readonly EmbeddingTable embed_tokens;
    private readonly ModuleList<LlamaDecoderLayer> layers;
    private readonly RmsNorm norm;

    public LlamaDecoder(LlamaConfig config, ScalarType dtype, Device device) : base("model")
    {
        embed_tokens = new EmbeddingTable(config.VocabSize, config.HiddenSize, dtype, device);
        layers = new ModuleList<LlamaDecoderLayer>(Enumerable.Range(0, config.LayerCount).Select(layer => new LlamaDecoderLayer(config, dtype, device, layer)).ToArray());
        norm = new RmsNorm(config.HiddenSize, config.RmsNormEpsilon, dtype, device);
        RegisterComponents();
    }

    public EmbeddingTable EmbedTokens => embed_tokens;

    /// <returns>(N, C) or (B, T, C): final hidden states, normalized.</returns>
    public Tensor Forward(Tensor tokenIds, Tensor cos, Tensor sin, IAttentionBackend attention, AdapterRouting? adapters)
    {
        Tensor x = embed_tokens.Forward(tokenIds);                                       // (..., C)
        foreach (LlamaDecoderLayer layer in layers)
        {
            Tensor next = layer.Forward(x, cos, sin, attention, adapters);
            x.Dispose();
            x = next;
        }
        using (x)
        {
            return norm.Forward(x);                                                      // (..., C)
        }
    }
}

/// <summary>A Llama-family causal LM (Hugging Face's *ForCausalLM): the decoder and the tied (or separate) LM head.</summary>
public sealed class LlamaModel : Module, ICausalLanguageModel
{
    private readonly LlamaDecoder model;
    // Only present when the checkpoint stores an lm_head that differs from embed_tokens.
    private readonly Linear? lm_head;
    private readonly RotaryEmbedding _rotary;

    public LlamaModel(LlamaConfig config, ScalarType dtype, Device device, bool separateHead = false) : base("llama")
    {
        Config = config;
        Dtype = dtype;
        Device = device;
        model = new LlamaDecoder(config, dtype, device);
        lm_head = separateHead ? new Linear(config.HiddenSize, config.VocabSize, hasBias: false, dtype, device) : null;
        _rotary = new RotaryEmbedding(InverseFrequencies(config), config.MaxPositions, dtype, device);
        RegisterComponents();
        Shape = new ModelShape(config.ModelType, config.LayerCount, config.HiddenSize, config.HeadCount, config.KvHeadCount,
            config.HeadSize, config.VocabSize, config.MaxPositions, parameters().Sum(p => p.numel()));
        // Every projection of a layer (q, k, v, o, gate, up, down), named as in the checkpoint, so
        // PEFT's full module name is the path itself. The LM head has no path: no adapter targets it.
        AdaptableLayers = new AdaptableLayers(ModelArchitectures.ClassNameOf(config.ModelType), config.LayerCount, PeftNamePrefix: "", FanInFanOut: false,
            model.modules().OfType<Linear>()
                .Where(layer => layer.ModulePath is not null)
                .Select(layer => new AdaptableLayer(layer.ModulePath!, (int)layer.Weight.shape[1], (int)layer.Weight.shape[0]))
                .ToList(),
            DefaultTargetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]);
    }

    public LlamaConfig Config { get; }
    public ScalarType Dtype { get; }
    public Device Device { get; }

    public ModelShape Shape { get; }

    public AdaptableLayers AdaptableLayers { get; }

    // Serving only: the tied LM head (embed_tokens) in its serving form; a separate head prepares itself.
    private IServingMatrix? _servedHead;

    /// <summary>The tied LM head's serving form (null with a separate lm_head, which holds its own, or before serving).</summary>
    public IServingMatrix? ServedTiedHead => _servedHead;

    /// <summary>The rotary frequencies config.json's rope_theta and rope_scaling call for.</summary>
    public static double[] InverseFrequencies(LlamaConfig config)
    {
        RopeScaling? scaling = config.RopeScaling;
        return scaling?.Type switch
        {
            "llama3" => RotaryEmbedding.Llama3InverseFrequencies(config.HeadSize, config.RopeTheta, scaling.Factor,
                scaling.LowFrequencyFactor, scaling.HighFrequencyFactor, scaling.OriginalMaxPositions),
            "linear" => RotaryEmbedding.LinearInverseFrequencies(config.HeadSize, config.RopeTheta, scaling.Factor),
            _ => RotaryEmbedding.DefaultInverseFrequencies(config.HeadSize, config.RopeTheta),
        };
    }

    /// <summary>Builds the inference-only weights serving multiplies by; call again after the weights change.</summary>
    public void PrepareForServing(WeightFormat format = WeightFormat.Float32)
    {
        foreach (Linear linear in modules().OfType<Linear>())
        {
            linear.PrepareForServing(format);
        }
        _servedHead?.Dispose();
        _servedHead = lm_head is null ? ServingMatrix.TryCreate(model.EmbedTokens.Weight, storedAsOutByIn: true, format) : null;
    }

    /// <summary>
    /// Token ids in, final hidden states out: (N) flattened tokens with a <see cref="PagedAttention"/>
    /// in serving, (B, T) sequences with <see cref="CausalAttention"/> (see <see cref="CausalLanguageModel.ForwardTraining"/>).
    /// </summary>
    /// <param name="positions">Each token's position, which drives its rotation: (N), or (T) shared by the B sequences.</param>
    /// <param name="adapters">LoRA adapters and the rows each applies to; null runs the base weights alone.</param>
    /// <returns>(N, C) or (B, T, C).</returns>
    public Tensor Forward(Tensor tokenIds, Tensor positions, IAttentionBackend attention, AdapterRouting? adapters = null)
    {
        (Tensor cos, Tensor sin) = _rotary.Lookup(positions);                            // (N, 1, hs) or (T, 1, hs)
        using (cos)
        using (sin)
        {
            return model.Forward(tokenIds, cos, sin, attention, adapters);               // (..., C)
        }
    }

    public IEnumerable<TokenMatrix> TokenMatrices() =>
        model.modules().OfType<Linear>()
            .Select(layer => new TokenMatrix(layer.Weight, StoredAsOutByIn: true, IsHead: false))
            .Append(new TokenMatrix(lm_head?.Weight ?? model.EmbedTokens.Weight, StoredAsOutByIn: true, IsHead: true));

    // The modules are named after the checkpoint's keys, so state_dict() is the checkpoint as is.
    public IEnumerable<(string Key, Tensor Weight)> CheckpointTensors() => state_dict().Select(entry => (entry.Key, entry.Value));

    public JsonObject CheckpointConfig() => Config.ToCheckpointJson();

    /// <summary>Projects hidden states (..., C) onto the vocabulary (..., V).</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head?.Forward(hidden) ?? TiedOutputHead.Logits(hidden, model.EmbedTokens.Weight, _servedHead);   // (..., V)

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _servedHead?.Dispose();
            _rotary.Dispose();
        }
        base.Dispose(disposing);
    }
}
