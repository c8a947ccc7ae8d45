using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// Where the tokens of one forward pass sit and what each may attend to.
/// A batch is a flat run of N tokens from several sequences. The runner orders them so that each
/// group below is a contiguous slice in which every sequence contributes the same number of query
/// tokens: all single-token decodes form one group, each prompt chunk forms its own. That way no
/// query is ever padded, and keys are gathered from the paged cache once per group.
/// </summary>
public sealed class AttentionMetadata : IDisposable
{
    /// <summary>(N) int64: the cache slot (block * block_size + offset) each token's key and value go to.</summary>
    public required Tensor SlotMapping { get; init; }

    public required IReadOnlyList<AttentionGroup> Groups { get; init; }

    public void Dispose()
    {
        SlotMapping.Dispose();
        foreach (AttentionGroup group in Groups)
        {
            group.Dispose();
        }
    }
}

/// <summary>
/// <see cref="SequenceCount"/> sequences with <see cref="QueryLength"/> query tokens each, stored as
/// tokens [<see cref="FirstToken"/>, FirstToken + SequenceCount * QueryLength) of the batch.
/// </summary>
public sealed class AttentionGroup : IDisposable
{
    public required int FirstToken { get; init; }
    public required int SequenceCount { get; init; }
    public required int QueryLength { get; init; }
    /// <summary>Keys each sequence reads: its block count rounded up to whole blocks (the mask hides the tail).</summary>
    public required int KeyLength { get; init; }

    /// <summary>(SequenceCount * KeyLength / block size) int64: the blocks to read keys and values from, in order, padded with block 0.</summary>
    /// <remarks>Null when <see cref="StartsAtFirstToken"/> or <see cref="DecodeContexts"/> is set: nothing is gathered.</remarks>
    public Tensor? KeyBlocks { get; init; }

    /// <summary>(SequenceCount, 1, QueryLength, KeyLength) bool: true where a query may see a key (causal, within its sequence).</summary>
    public Tensor? Mask { get; init; }

    /// <summary>
    /// One sequence whose whole context is this step's tokens (a prompt computed from its first
    /// token): its keys and values are the ones just computed, and plain causal attention over
    /// them needs neither a gather nor a mask.
    /// </summary>
    public bool StartsAtFirstToken { get; init; }

    /// <summary>
    /// Set for a decode group (one query per sequence) whose cache <see cref="PagedDecodeAttention"/>
    /// can read in place: the block tables stay on the host and no gather or mask is built.
    /// </summary>
    public DecodeContexts? DecodeContexts { get; init; }

    public int TokenCount => SequenceCount * QueryLength;

    public void Dispose()
    {
        KeyBlocks?.Dispose();
        Mask?.Dispose();
    }
}
