using System.Text.Json;
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

namespace LlmServer.Inference.Models.Gpt2;

// GPT-2, top-down in the order of nanoGPT's model.py: attention, MLP, block, model. Every module
// field is named after its checkpoint key, so "h.3.attn.c_attn.weight" is h[3].attn.c_attn's weight
// (state_dict() keys are the checkpoint's without "transformer.").
//
// Serving and training run the same forward; only the attention backend differs (IAttentionBackend):
//  - serving: N tokens from many sequences, flattened to (N, C); PagedAttention reads and writes
//    the paged KV cache.
//  - training and evaluation: (B, T) whole sequences; CausalAttention attends within each, no cache.
// Both take optional LoRA adapters (AdapterRouting): each Conv1D knows its path ("h.0.attn.c_attn")
// and adds the low-rank update of whichever adapters target that path, for the rows routed to them.

/// <summary>Multi-head causal self-attention: GPT-2's projections around the backend's attention.</summary>
public sealed class CausalSelfAttention : Module
{
    private readonly Conv1D c_attn;
    private readonly Conv1D c_proj;
    private readonly int _layer;
    private readonly int _embeddingSize;
    private readonly int _headCount;
    private readonly int _headSize;

    public CausalSelfAttention(Gpt2Config config, ScalarType dtype, Device device, int layer) : base("attn")
    {
        _layer = layer;
        _embeddingSize = config.EmbeddingSize;
        _headCount = config.HeadCount;
        _headSize = config.HeadSize;
        c_attn = new Conv1D(_embeddingSize, 3 * _embeddingSize, dtype, device, $"h.{layer}.attn.c_attn");
        c_proj = new Conv1D(_embeddingSize, _embeddingSize, dtype, device, $"h.{layer}.attn.c_proj");
        RegisterComponents();
    }

    /// <param name="x">(N, C) in serving, (B, T, C) in training: "..." below.</param>
    public Tensor Forward(Tensor x, IAttentionBackend attention, AdapterRouting? adapters = null)
    {
        long[] headShape = [.. x.shape[..^1], _headCount, _headSize];                    // (..., nh, hs)
        using Tensor qkv = c_attn.Forward(x, adapters);                                  // (..., 3C)
        Tensor[] parts = qkv.split(_embeddingSize, dim: -1);                             // 3 x (..., C)
        using Tensor q = parts[0].view(headShape);                                       // (..., nh, hs)
        using Tensor k = parts[1].view(headShape);                                       // (..., nh, hs)
        using Tensor v = parts[2].view(headShape);                                       // (..., nh, hs)
        foreach (Tensor part in parts)
        {
            part.Dispose();
        }
        using Tensor y = attention.Attend(_layer, q, k, v);                              // (..., C)
        return c_proj.Forward(y, adapters);                                              // (..., C)
    }
}

/// <summary>The position-wise feed-forward network.</summary>
public sealed class Mlp : Module
{
    private readonly Conv1D c_fc;
    private readonly Conv1D c_proj;
    private readonly string _activation;

    public Mlp(Gpt2Config config, ScalarType dtype, Device device, int layer) : base("mlp")
    {
        c_fc = new Conv1D(config.EmbeddingSize, config.FeedForwardSize, dtype, device, $"h.{layer}.mlp.c_fc");
        c_proj = new Conv1D(config.FeedForwardSize, config.EmbeddingSize, dtype, device, $"h.{layer}.mlp.c_proj");
        _activation = config.ActivationFunction;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AdapterRouting? adapters = null)
    {
        using Tensor hidden = c_fc.Forward(x, adapters);                                 // (..., 4C)
        using Tensor activated = _activation switch
        {
            "gelu_new" or "gelu_pytorch_tanh" => TanhGelu.Apply(hidden),
            "gelu" => functional.gelu(hidden),
            _ => functional.relu(hidden),
        };
        return c_proj.Forward(activated, adapters);                                      // (..., C)
    }
}

/// <summary>A pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).</summary>
public sealed class Block : Module
{
    private readonly LayerNormalization ln_1;
    private readonly CausalSelfAttention attn;
    private readonly LayerNormalization ln_2;
    private readonly Mlp mlp;

    public Block(Gpt2Config config, ScalarType dtype, Device device, int layer) : base("block")
    {
        ln_1 = new LayerNormalization(config.EmbeddingSize, config.LayerNormEpsilon, dtype, device);
        attn = new CausalSelfAttention(config, dtype, device, layer);
        ln_2 = new LayerNormalization(config.EmbeddingSize, config.LayerNormEpsilon, dtype, device);
        mlp = new Mlp(config, dtype, device, layer);
        RegisterComponents();
    }

    /// <param name="x">(N, C) in serving, (B, T, C) in training.</param>
    public Tensor Forward(Tensor x, IAttentionBackend attention, AdapterRouting? adapters = null)
    {
        using Tensor normed = ln_1.Forward(x);
        using Tensor attended = attn.Forward(normed, attention, adapters);
        using Tensor afterAttention = x.add(attended);                                   // (..., C)
        using Tensor normedAgain = ln_2.Forward(afterAttention);
        using Tensor transformed = mlp.Forward(normedAgain, adapters);
        return afterAttention.add(transformed);                                          // (..., C)
    }
}

/// <summary>GPT-2: token and position embeddings, the blocks, a final norm, and the tied (or separate) LM head.</summary>
public sealed class Gpt2Model : Module, ICausalLanguageModel
{
    private readonly EmbeddingTable wte;
    private readonly EmbeddingTable wpe;
    private readonly ModuleList<Block> h;
    private readonly LayerNormalization ln_f;
    // Only present when the checkpoint stores an lm_head that differs from wte.
    private readonly Linear? lm_head;

    public Gpt2Model(Gpt2Config config, ScalarType dtype, Device device, bool separateHead = false) : base("gpt2")
    {
        Config = config;
        Dtype = dtype;
        Device = device;
        wte = new EmbeddingTable(config.VocabSize, config.EmbeddingSize, dtype, device);
        wpe = new EmbeddingTable(config.MaxPositions, config.EmbeddingSize, dtype, device);
        h = new ModuleList<Block>(Enumerable.Range(0, config.LayerCount).Select(layer => new Block(config, dtype, device, layer)).ToArray());
        ln_f = new LayerNormalization(config.EmbeddingSize, config.LayerNormEpsilon, dtype, device);
        // lm_head in Hugging Face is an nn.Linear: weight (V, C), no bias.
        lm_head = separateHead ? new Linear(config.EmbeddingSize, config.VocabSize, hasBias: false, dtype, device) : null;
        RegisterComponents();
        Shape = new ModelShape(config.ModelType, config.LayerCount, config.EmbeddingSize, config.HeadCount, config.HeadCount,
            config.HeadSize, config.VocabSize, config.MaxPositions, parameters().Sum(p => p.numel()));
        // Every Conv1D of a block; the LM head has no path, so no adapter targets it. A Conv1D stores (in, out).
        AdaptableLayers = new AdaptableLayers("GPT-2", config.LayerCount, PeftNamePrefix: "transformer.", FanInFanOut: true,
            h.SelectMany(block => block.modules().OfType<Conv1D>())
                .Where(layer => layer.ModulePath is not null)
                .Select(layer => new AdaptableLayer(layer.ModulePath!, (int)layer.Weight.shape[0], (int)layer.Weight.shape[1]))
                .ToList(),
            DefaultTargetModules: ["c_attn", "c_proj", "c_fc"]);
    }

    public Gpt2Config Config { get; }
    public ScalarType Dtype { get; }
    public Device Device { get; }

    public ModelShape Shape { get; }

    public AdaptableLayers AdaptableLayers { get; }

    // Serving only: the tied LM head (wte) in its serving form; a separate head prepares itself as a Linear.
    private IServingMatrix? _servedHead;

    /// <summary>The tied LM head's serving form (null with a separate lm_head, which holds its own, or before serving).</summary>
    public IServingMatrix? ServedTiedHead => _servedHead;

    /// <summary>Builds the inference-only weights serving multiplies by; call again after the weights change.</summary>
    public void PrepareForServing(WeightFormat format = WeightFormat.Float32)
    {
        foreach (Conv1D linear in modules().OfType<Conv1D>())
        {
            linear.PrepareForServing(format);
        }
        lm_head?.PrepareForServing(format);
        _servedHead?.Dispose();
        _servedHead = lm_head is null ? ServingMatrix.TryCreate(wte.Weight, storedAsOutByIn: true, format) : null;
    }

    /// <summary>
    /// Token ids in, final hidden states out: (N) flattened tokens with a <see cref="PagedAttention"/>
    /// in serving, (B, T) sequences with <see cref="CausalAttention"/> (see <see cref="CausalLanguageModel.ForwardTraining"/>).
    /// </summary>
    /// <param name="positions">Each token's position: (N), or (T) shared by the B sequences.</param>
    /// <param name="adapters">LoRA adapters and the rows each applies to; null runs the base weights alone.</param>
    /// <returns>(N, C) or (B, T, C).</returns>
    public Tensor Forward(Tensor tokenIds, Tensor positions, IAttentionBackend attention, AdapterRouting? adapters = null)
    {
        using Tensor tokens = wte.Forward(tokenIds);                                     // (..., C)
        using Tensor places = wpe.Forward(positions);                                    // (N, C) or (T, C)
        Tensor x = tokens.add(places);                                                   // (..., C)
        foreach (Block block in h)
        {
            Tensor next = block.Forward(x, attention, adapters);
            x.Dispose();
            x = next;
        }
        using (x)
        {
            return ln_f.Forward(x);                                                      // (..., C)
        }
    }

    public IEnumerable<TokenMatrix> TokenMatrices() =>
        h.SelectMany(block => block.modules().OfType<Conv1D>())
            .Select(layer => new TokenMatrix(layer.Weight, StoredAsOutByIn: false, IsHead: false))
            .Append(new TokenMatrix(lm_head?.Weight ?? wte.Weight, StoredAsOutByIn: true, IsHead: true));

    // GPT2LMHeadModel nests the network under "transformer."; only its lm_head sits at the top.
    public IEnumerable<(string Key, Tensor Weight)> CheckpointTensors() =>
        state_dict().Select(entry => (entry.Key.StartsWith("lm_head.", StringComparison.Ordinal) ? entry.Key : "transformer." + entry.Key, entry.Value));

    public JsonObject CheckpointConfig()
    {
        JsonObject json = JsonSerializer.SerializeToNode(Config)!.AsObject();
        json["architectures"] = new JsonArray("GPT2LMHeadModel");
        json["n_ctx"] = Config.MaxPositions;
        return json;
    }

    /// <summary>Projects hidden states (..., C) onto the vocabulary (..., V).</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head?.Forward(hidden) ?? TiedOutputHead.Logits(hidden, wte.Weight, _servedHead);   // (..., V)

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _servedHead?.Dispose();
        }
        base.Dispose(disposing);
    }
}
