using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Layers;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using TorchSharp.Utils;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace LlmServer.Inference.Models.Gpt2;

// GPT-2, top-down in the order of nanoGPT's model.py. Fields keep C# names; [ComponentName] gives
// them the Hugging Face names, so state_dict() keys are the checkpoint's keys without "transformer.".
//
// Two forward paths share the weights:
//  - Forward(tokens, positions, metadata, cache): serving. N tokens from many sequences, flattened
//    to (N, C); keys and values go through the paged cache.
//  - ForwardTraining(tokens): training and scoring. (B, T) with plain causal attention, no cache.
// Both take optional LoRA adapters (AdapterRouting): each Conv1D knows its path ("h.0.attn.c_attn")
// and adds the low-rank update of whichever adapters target that path, for the rows routed to them.

/// <summary>Multi-head causal self-attention reading and writing the paged KV cache.</summary>
public sealed class CausalSelfAttention : Module
{
    [ComponentName(Name = "c_attn")] private readonly Conv1D _queryKeyValue;
    [ComponentName(Name = "c_proj")] private readonly Conv1D _outputProjection;
    private readonly int _embeddingSize;
    private readonly int _headCount;
    private readonly int _headSize;

    public CausalSelfAttention(Gpt2Config config, ScalarType dtype, Device device, int layer) : base("attn")
    {
        _embeddingSize = config.EmbeddingSize;
        _headCount = config.HeadCount;
        _headSize = config.HeadSize;
        _queryKeyValue = new Conv1D(_embeddingSize, 3 * _embeddingSize, dtype, device, $"h.{layer}.attn.c_attn");
        _outputProjection = new Conv1D(_embeddingSize, _embeddingSize, dtype, device, $"h.{layer}.attn.c_proj");
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionMetadata metadata, PagedKvCache cache, int layer, AdapterRouting? adapters = null)
    {
        long n = x.shape[0];
        Tensor keyCache = cache.Keys(layer), valueCache = cache.Values(layer);
        using Tensor qkv = _queryKeyValue.Forward(x, adapters);                        // (N, 3C)
        Tensor[] parts = qkv.split(_embeddingSize, dim: 1);
        using Tensor q = parts[0].view(n, _headCount, _headSize);                      // (N, nh, hs)
        using Tensor k = parts[1].view(n, _headCount, _headSize);                      // (N, nh, hs)
        using Tensor v = parts[2].view(n, _headCount, _headSize);                      // (N, nh, hs)
        foreach (Tensor part in parts)
        {
            part.Dispose();
        }

        // The new keys and values join the cache first, so every group reads its whole context,
        // the tokens of this step included, from one place.
        keyCache.index_copy_(0, metadata.SlotMapping, k);
        valueCache.index_copy_(0, metadata.SlotMapping, v);

        var groupOutputs = new List<Tensor>(metadata.Groups.Count);
        foreach (AttentionGroup group in metadata.Groups)
        {
            long b = group.SequenceCount, tq = group.QueryLength, tk = group.KeyLength;
            if (group.StartsAtFirstToken)
            {
                // Query and key lengths are equal, so SDPA's top-left causal mask is right, and
                // without an explicit mask it can take its memory-efficient kernel.
                using Tensor ownQueries = q.narrow(0, group.FirstToken, group.TokenCount).view(1, tq, _headCount, _headSize).transpose(1, 2); // (1, nh, T, hs)
                using Tensor ownKeys = k.narrow(0, group.FirstToken, group.TokenCount).view(1, tq, _headCount, _headSize).transpose(1, 2);    // (1, nh, T, hs)
                using Tensor ownValues = v.narrow(0, group.FirstToken, group.TokenCount).view(1, tq, _headCount, _headSize).transpose(1, 2);  // (1, nh, T, hs)
                using Tensor causal = functional.scaled_dot_product_attention(ownQueries, ownKeys, ownValues, is_casual: true);               // (1, nh, T, hs)
                groupOutputs.Add(causal.transpose(1, 2).reshape(tq, _embeddingSize));                                                       // (T, C)
                continue;
            }
            if (group.DecodeContexts is not null)
            {
                using Tensor decodeQueries = q.narrow(0, group.FirstToken, group.TokenCount); // (B, nh, hs)
                groupOutputs.Add(PagedDecodeAttention.Run(decodeQueries, cache, layer, group)); // (B, C)
                continue;
            }
            using Tensor groupQueries = q.narrow(0, group.FirstToken, group.TokenCount)
                .view(b, tq, _headCount, _headSize).transpose(1, 2);                   // (B, nh, Tq, hs)
            // Whole blocks are gathered: one row of block_size * C floats per block.
            using Tensor groupKeys = cache.KeyBlocks(layer).index_select(0, group.KeyBlocks!)
                .view(b, tk, _headCount, _headSize).transpose(1, 2);                   // (B, nh, Tk, hs)
            using Tensor groupValues = cache.ValueBlocks(layer).index_select(0, group.KeyBlocks!)
                .view(b, tk, _headCount, _headSize).transpose(1, 2);                   // (B, nh, Tk, hs)
            using Tensor attended = functional.scaled_dot_product_attention(
                groupQueries, groupKeys, groupValues, group.Mask!);                     // (B, nh, Tq, hs)
            groupOutputs.Add(attended.transpose(1, 2).reshape(b * tq, _embeddingSize)); // (B*Tq, C)
        }
        using Tensor y = groupOutputs.Count == 1 ? groupOutputs[0] : cat(groupOutputs, 0); // (N, C)
        if (groupOutputs.Count > 1)
        {
            groupOutputs.ForEach(t => t.Dispose());
        }
        return _outputProjection.Forward(y, adapters);                                 // (N, C)
    }

    public Tensor ForwardTraining(Tensor x, AdapterRouting? adapters = null)
    {
        long b = x.shape[0], t = x.shape[1];
        using Tensor qkv = _queryKeyValue.Forward(x, adapters);                        // (B, T, 3C)
        Tensor[] parts = qkv.split(_embeddingSize, dim: 2);
        using Tensor q = parts[0].view(b, t, _headCount, _headSize).transpose(1, 2);   // (B, nh, T, hs)
        using Tensor k = parts[1].view(b, t, _headCount, _headSize).transpose(1, 2);   // (B, nh, T, hs)
        using Tensor v = parts[2].view(b, t, _headCount, _headSize).transpose(1, 2);   // (B, nh, T, hs)
        foreach (Tensor part in parts)
        {
            part.Dispose();
        }
        // Query and key lengths are equal here, so the top-left aligned causal mask is right.
        using Tensor attended = functional.scaled_dot_product_attention(q, k, v, is_casual: true); // (B, nh, T, hs)
        using Tensor y = attended.transpose(1, 2).reshape(b, t, _embeddingSize);        // (B, T, C)
        return _outputProjection.Forward(y, adapters);                                  // (B, T, C)
    }
}

/// <summary>The position-wise feed-forward network.</summary>
public sealed class Mlp : Module
{
    [ComponentName(Name = "c_fc")] private readonly Conv1D _expand;
    [ComponentName(Name = "c_proj")] private readonly Conv1D _contract;
    private readonly string _activation;

    public Mlp(Gpt2Config config, ScalarType dtype, Device device, int layer) : base("mlp")
    {
        _expand = new Conv1D(config.EmbeddingSize, config.FeedForwardSize, dtype, device, $"h.{layer}.mlp.c_fc");
        _contract = new Conv1D(config.FeedForwardSize, config.EmbeddingSize, dtype, device, $"h.{layer}.mlp.c_proj");
        _activation = config.ActivationFunction;
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AdapterRouting? adapters = null)
    {
        using Tensor hidden = _expand.Forward(x, adapters);                              // (..., 4C)
        using Tensor activated = _activation switch
        {
            "gelu_new" or "gelu_pytorch_tanh" => functional.gelu(hidden, TorchSharp.Modules.GELU.Approximate.tanh),
            "gelu" => functional.gelu(hidden),
            _ => functional.relu(hidden),
        };
        return _contract.Forward(activated, adapters);                                   // (..., C)
    }
}

/// <summary>A pre-norm transformer block: x + attn(ln_1(x)), then x + mlp(ln_2(x)).</summary>
public sealed class Block : Module
{
    [ComponentName(Name = "ln_1")] private readonly LayerNormalization _attentionNorm;
    [ComponentName(Name = "attn")] private readonly CausalSelfAttention _attention;
    [ComponentName(Name = "ln_2")] private readonly LayerNormalization _mlpNorm;
    [ComponentName(Name = "mlp")] private readonly Mlp _mlp;

    public Block(Gpt2Config config, ScalarType dtype, Device device, int layer) : base("block")
    {
        _attentionNorm = new LayerNormalization(config.EmbeddingSize, config.LayerNormEpsilon, dtype, device);
        _attention = new CausalSelfAttention(config, dtype, device, layer);
        _mlpNorm = new LayerNormalization(config.EmbeddingSize, config.LayerNormEpsilon, dtype, device);
        _mlp = new Mlp(config, dtype, device, layer);
        RegisterComponents();
    }

    public Tensor Forward(Tensor x, AttentionMetadata metadata, PagedKvCache cache, int layer, AdapterRouting? adapters = null)
    {
        using Tensor normed = _attentionNorm.Forward(x);
        using Tensor attended = _attention.Forward(normed, metadata, cache, layer, adapters);
        using Tensor afterAttention = x.add(attended);
        using Tensor normedAgain = _mlpNorm.Forward(afterAttention);
        using Tensor transformed = _mlp.Forward(normedAgain, adapters);
        return afterAttention.add(transformed);
    }

    public Tensor ForwardTraining(Tensor x, AdapterRouting? adapters = null)
    {
        using Tensor normed = _attentionNorm.Forward(x);
        using Tensor attended = _attention.ForwardTraining(normed, adapters);
        using Tensor afterAttention = x.add(attended);
        using Tensor normedAgain = _mlpNorm.Forward(afterAttention);
        using Tensor transformed = _mlp.Forward(normedAgain, adapters);
        return afterAttention.add(transformed);
    }
}

/// <summary>GPT-2: token and position embeddings, the blocks, a final norm, and the tied (or separate) LM head.</summary>
public sealed class Gpt2Model : Module
{
    [ComponentName(Name = "wte")] private readonly EmbeddingTable _tokenEmbedding;
    [ComponentName(Name = "wpe")] private readonly EmbeddingTable _positionEmbedding;
    [ComponentName(Name = "h")] private readonly ModuleList<Block> _blocks;
    [ComponentName(Name = "ln_f")] private readonly LayerNormalization _finalNorm;
    // Only present when the checkpoint stores an lm_head that differs from wte.
    [ComponentName(Name = "lm_head")] private readonly Conv1D? _separateHead;

    public Gpt2Model(Gpt2Config config, ScalarType dtype, Device device, bool separateHead = false) : base("gpt2")
    {
        Config = config;
        Dtype = dtype;
        Device = device;
        _tokenEmbedding = new EmbeddingTable(config.VocabSize, config.EmbeddingSize, dtype, device);
        _positionEmbedding = new EmbeddingTable(config.MaxPositions, config.EmbeddingSize, dtype, device);
        _blocks = new ModuleList<Block>(Enumerable.Range(0, config.LayerCount).Select(layer => new Block(config, dtype, device, layer)).ToArray());
        _finalNorm = new LayerNormalization(config.EmbeddingSize, config.LayerNormEpsilon, dtype, device);
        // lm_head in Hugging Face is an nn.Linear: weight (V, C), no bias.
        _separateHead = separateHead ? Conv1D.LinearWithoutBias(config.EmbeddingSize, config.VocabSize, dtype, device) : null;
        RegisterComponents();
    }

    public Gpt2Config Config { get; }
    public ScalarType Dtype { get; }
    public Device Device { get; }

    // Serving only: the tied LM head (wte) packed for MKL; a separate head packs itself as a Conv1D.
    private MklPackedMatrix? _packedHead;

    /// <summary>Builds the inference-only packed weights serving uses; call again after the weights change.</summary>
    public void PrepareForServing()
    {
        foreach (Conv1D linear in modules().OfType<Conv1D>())
        {
            linear.PrepareForServing();
        }
        _packedHead?.Dispose();
        _packedHead = _separateHead is null ? MklPackedMatrix.TryPack(_tokenEmbedding.Weight, storedAsOutByIn: true) : null;
    }

    /// <summary>Serving forward: N flattened tokens in, final hidden states (N, C) out.</summary>
    /// <param name="adapters">LoRA adapters and the rows each applies to; null serves the base weights alone.</param>
    public Tensor Forward(Tensor tokenIds, Tensor positions, AttentionMetadata metadata, PagedKvCache cache, AdapterRouting? adapters = null)
    {
        using Tensor tokens = _tokenEmbedding.Forward(tokenIds);                        // (N, C)
        using Tensor places = _positionEmbedding.Forward(positions);                    // (N, C)
        Tensor x = tokens.add(places);                                                   // (N, C)
        for (int layer = 0; layer < _blocks.Count; layer++)
        {
            Tensor next = _blocks[layer].Forward(x, metadata, cache, layer, adapters);
            x.Dispose();
            x = next;
        }
        using (x)
        {
            return _finalNorm.Forward(x);                                                // (N, C)
        }
    }

    /// <summary>Training forward: (B, T) token ids in, logits (B, T, V) out.</summary>
    /// <param name="adapters">Usually <see cref="AdapterRouting.ForAllRows"/> while training an adapter; null runs the base alone.</param>
    public Tensor ForwardTraining(Tensor tokenIds, AdapterRouting? adapters = null)
    {
        long t = tokenIds.shape[1];
        using Tensor positions = arange(t, ScalarType.Int64, tokenIds.device);         // (T)
        using Tensor tokens = _tokenEmbedding.Forward(tokenIds);                        // (B, T, C)
        using Tensor places = _positionEmbedding.Forward(positions);                    // (T, C)
        Tensor x = tokens.add(places);                                                   // (B, T, C)
        foreach (Block block in _blocks)
        {
            Tensor next = block.ForwardTraining(x, adapters);
            x.Dispose();
            x = next;
        }
        using (x)
        {
            using Tensor normed = _finalNorm.Forward(x);                                 // (B, T, C)
            return Logits(normed);                                                       // (B, T, V)
        }
    }

    /// <summary>Projects hidden states (..., C) onto the vocabulary (..., V).</summary>
    public Tensor Logits(Tensor hidden)
    {
        if (_separateHead is not null)
        {
            return _separateHead.Forward(hidden);                                        // (..., V)
        }
        if (_packedHead is not null && hidden.dim() == 2 && torch.is_inference_mode_enabled())
        {
            return _packedHead.Multiply(hidden, bias: null);                             // (N, V)
        }
        return hidden.matmul(_tokenEmbedding.Weight.t());                                // (..., V)
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _packedHead?.Dispose();
        }
        base.Dispose(disposing);
    }
}
