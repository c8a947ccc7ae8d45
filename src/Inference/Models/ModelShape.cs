using LlmServer.Inference.Models.Attention;

namespace LlmServer.Inference.Models;

/// <summary>
/// What the engine, the API and the tools need to know of a loaded model, in words that mean the
/// same for every architecture (each config.json names them its own way: GPT-2's n_layer and
/// n_embd, Llama's num_hidden_layers and hidden_size). No tensors.
/// </summary>
/// <param name="ModelType">config.json's model_type: "gpt2", "llama", "qwen2", ...</param>
/// <param name="KvHeadCount">Key/value heads: <paramref name="HeadCount"/>, or fewer under grouped-query attention.</param>
/// <param name="VocabSize">Rows of the LM head: the width of every logits row (may exceed the tokenizer's vocabulary).</param>
/// <param name="MaxPositions">The longest sequence the model was built for (n_positions, max_position_embeddings).</param>
/// <param name="ParameterCount">Every weight, a tied LM head counted once.</param>
public sealed record ModelShape(
    string ModelType,
    int LayerCount,
    int HiddenSize,
    int HeadCount,
    int KvHeadCount,
    int HeadSize,
    int VocabSize,
    int MaxPositions,
    long ParameterCount) : IKvCacheShape
{
    /// <summary>
    /// Whether a model of <paramref name="other"/>'s shape can share a KV cache sized for this one,
    /// and sample over the same vocabulary.
    /// </summary>
    public bool CanShareEngineWith(ModelShape other) =>
        LayerCount == other.LayerCount && KvHeadCount == other.KvHeadCount && HeadSize == other.HeadSize && VocabSize == other.VocabSize;

    /// <summary>"24 layers, 896 wide, 14 heads (2 KV heads of 64), vocabulary 151936" for messages and logs.</summary>
    public string Describe() =>
        $"{ModelType}: {LayerCount} layers, {HiddenSize} wide, {HeadCount} heads ({KvHeadCount} KV heads of {HeadSize}), vocabulary {VocabSize}";
}
