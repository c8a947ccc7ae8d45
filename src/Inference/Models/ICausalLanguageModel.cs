using System.Text.Json.Nodes;
using LlmServer.Inference.Models.Attention;
using LlmServer.Inference.Models.Layers;
using LlmServer.Inference.Models.Lora;
using LlmServer.Inference.Quantization;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// What the serving runner needs of a causal language model, whatever its architecture (GPT-2,
/// the Llama family): one forward over flattened tokens at their positions through an attention
/// backend, and the projection of hidden states onto the vocabulary.
/// </summary>
public interface ICausalLanguageModel : IDisposable
{
    Device Device { get; }

    /// <summary>The dtype the weights are held in.</summary>
    ScalarType Dtype { get; }

    /// <summary>The model's dimensions in architecture-independent words.</summary>
    ModelShape Shape { get; }

    /// <param name="tokenIds">(N) in serving, (B, T) in training.</param>
    /// <param name="positions">(N), or (T) shared by the B sequences.</param>
    /// <returns>(N, C) or (B, T, C): final hidden states.</returns>
    Tensor Forward(Tensor tokenIds, Tensor positions, IAttentionBackend attention, AdapterRouting? adapters = null);

    /// <summary>Projects hidden states (..., C) onto the vocabulary (..., V).</summary>
    Tensor Logits(Tensor hidden);

    /// <summary>The layers LoRA adapters can target, by the module path the forward hands to <see cref="AdapterRouting"/>.</summary>
    AdaptableLayers AdaptableLayers { get; }

    /// <summary>Builds the inference-only weights serving multiplies by, in <paramref name="format"/>; call again after the weights change.</summary>
    void PrepareForServing(WeightFormat format = WeightFormat.Float32);

    /// <summary>
    /// After <see cref="PrepareForServing"/> in bfloat16 or int8: frees the float32 values of every projection
    /// those forms now serve (not the token embedding, which lookups read), so serving holds the reduced weights only.
    /// </summary>
    void ReleaseFullPrecisionWeights()
    {
        foreach (Projection projection in ((TorchSharp.torch.nn.Module)this).modules().OfType<Projection>())
        {
            projection.ReleaseFullPrecision();
        }
    }

    /// <summary>Every weight matrix a token is multiplied by, the LM head last: what a decode step reads and computes with.</summary>
    IEnumerable<TokenMatrix> TokenMatrices();

    /// <summary>Every weight under the key a Hugging Face checkpoint of this architecture stores it by (a tied LM head once).</summary>
    IEnumerable<(string Key, Tensor Weight)> CheckpointTensors();

    /// <summary>config.json as transformers writes it for this architecture, without torch_dtype.</summary>
    JsonObject CheckpointConfig();
}

/// <summary>One weight matrix of a model's per-token products.</summary>
/// <param name="StoredAsOutByIn">nn.Linear's (out, in) layout; false for GPT-2's Conv1D (in, out).</param>
/// <param name="IsHead">The LM head (the tied embedding table, or a separate lm_head).</param>
public readonly record struct TokenMatrix(Tensor Weight, bool StoredAsOutByIn, bool IsHead);

/// <summary>What every causal language model does the same way on top of <see cref="ICausalLanguageModel"/>.</summary>
public static class CausalLanguageModel
{
    /// <summary>Training and evaluation: (B, T) token ids from position 0 in, logits (B, T, V) out.</summary>
    /// <param name="adapters">Usually <see cref="AdapterRouting.ForAllRows"/> while training an adapter; null runs the base alone.</param>
    public static Tensor ForwardTraining(this ICausalLanguageModel model, Tensor tokenIds, AdapterRouting? adapters = null)
    {
        using Tensor positions = arange(tokenIds.shape[1], ScalarType.Int64, tokenIds.device); // (T)
        using Tensor hidden = model.Forward(tokenIds, positions, CausalAttention.Instance, adapters); // (B, T, C)
        return model.Logits(hidden);                                                     // (B, T, V)
    }
}
