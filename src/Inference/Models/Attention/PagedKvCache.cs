using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// The key/value memory of every layer, preallocated once as one tensor and addressed by slot.
/// A slot is one token position inside one block (slot = block * BlockSize + offset); which blocks
/// belong to which request is the engine's bookkeeping, not this class's.
/// </summary>
public sealed class PagedKvCache : IDisposable
{
    private readonly Tensor _pool;       // (layers, 2, slots, n_kv, hs)
    private readonly Tensor[] _keys;     // per layer: (slots, n_kv, hs) views into _pool
    private readonly Tensor[] _values;
    private readonly Tensor[] _keyBlocks;
    private readonly Tensor[] _valueBlocks;

    public PagedKvCache(IKvCacheShape shape, int blockCount, int blockSize, ScalarType dtype, Device device)
    {
        BlockCount = blockCount;
        BlockSize = blockSize;
        Dtype = dtype;
        Device = device;
        long slots = (long)blockCount * blockSize;
        _pool = zeros([shape.LayerCount, 2, slots, shape.KvHeadCount, shape.HeadSize], dtype, device); // (layers, 2, slots, n_kv, hs)
        _keys = new Tensor[shape.LayerCount];
        _values = new Tensor[shape.LayerCount];
        _keyBlocks = new Tensor[shape.LayerCount];
        _valueBlocks = new Tensor[shape.LayerCount];
        for (int layer = 0; layer < shape.LayerCount; layer++)
        {
            _keys[layer] = _pool[layer, 0];                                              // (slots, n_kv, hs)
            _values[layer] = _pool[layer, 1];                                            // (slots, n_kv, hs)
            _keyBlocks[layer] = _keys[layer].view(blockCount, -1);                       // (blocks, BlockSize * n_kv * hs)
            _valueBlocks[layer] = _values[layer].view(blockCount, -1);                   // (blocks, BlockSize * n_kv * hs)
        }
    }

    public int BlockCount { get; }
    public int BlockSize { get; }
    public ScalarType Dtype { get; }
    public Device Device { get; }

    /// <summary>(slots, n_kv, hs): where each token's key goes.</summary>
    public Tensor Keys(int layer) => _keys[layer];
    public Tensor Values(int layer) => _values[layer];

    /// <summary>(blocks, BlockSize * n_kv * hs): the same memory a block per row, for gathering whole blocks.</summary>
    public Tensor KeyBlocks(int layer) => _keyBlocks[layer];
    public Tensor ValueBlocks(int layer) => _valueBlocks[layer];

    /// <summary>Bytes one block takes across all layers, keys and values.</summary>
    public static long BytesPerBlock(IKvCacheShape shape, int blockSize, ScalarType dtype) =>
        2L * shape.LayerCount * blockSize * shape.KvHeadCount * shape.HeadSize * ElementSize(dtype);

    public static int ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => 4,
        ScalarType.Float16 or ScalarType.BFloat16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unsupported cache dtype"),
    };

    public void Dispose()
    {
        foreach (Tensor view in _keys.Concat(_values).Concat(_keyBlocks).Concat(_valueBlocks))
        {
            view.Dispose();
        }
        _pool.Dispose();
    }
}
