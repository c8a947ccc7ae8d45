using static TorchSharp.torch;

namespace LlmServer.Inference.Models;

/// <summary>
/// The key/value memory of every layer, preallocated once as one tensor and addressed by slot.
/// A slot is one token position inside one block (slot = block * BlockSize + offset); which blocks
/// belong to which request is the engine's bookkeeping, not this class's.
/// </summary>
public sealed class PagedKvCache : IDisposable
{
    private readonly Tensor _pool;       // (layers, 2, slots, nh, hs)
    private readonly Tensor[] _keys;     // per layer: (slots, nh, hs) views into _pool
    private readonly Tensor[] _values;
    private readonly Tensor[] _keyBlocks;
    private readonly Tensor[] _valueBlocks;

    public PagedKvCache(Gpt2Config config, int blockCount, int blockSize, ScalarType dtype, Device device)
    {
        BlockCount = blockCount;
        BlockSize = blockSize;
        Dtype = dtype;
        Device = device;
        long slots = (long)blockCount * blockSize;
        _pool = zeros([config.LayerCount, 2, slots, config.HeadCount, config.HeadSize], dtype, device);
        _keys = new Tensor[config.LayerCount];
        _values = new Tensor[config.LayerCount];
        _keyBlocks = new Tensor[config.LayerCount];
        _valueBlocks = new Tensor[config.LayerCount];
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            _keys[layer] = _pool[layer, 0];
            _values[layer] = _pool[layer, 1];
            _keyBlocks[layer] = _keys[layer].view(blockCount, -1);
            _valueBlocks[layer] = _values[layer].view(blockCount, -1);
        }
    }

    public int BlockCount { get; }
    public int BlockSize { get; }
    public ScalarType Dtype { get; }
    public Device Device { get; }

    /// <summary>(slots, nh, hs): where each token's key goes.</summary>
    public Tensor Keys(int layer) => _keys[layer];
    public Tensor Values(int layer) => _values[layer];

    /// <summary>(blocks, BlockSize * nh * hs): the same memory a block per row, for gathering whole blocks.</summary>
    public Tensor KeyBlocks(int layer) => _keyBlocks[layer];
    public Tensor ValueBlocks(int layer) => _valueBlocks[layer];

    /// <summary>Bytes one block takes across all layers, keys and values.</summary>
    public static long BytesPerBlock(Gpt2Config config, int blockSize, ScalarType dtype) =>
        2L * config.LayerCount * blockSize * config.EmbeddingSize * ElementSize(dtype);

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
