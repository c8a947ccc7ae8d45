using LlmServer.Inference.Quantization;
using LlmServer.Inference.Runtime;
using static TorchSharp.torch;

namespace LlmServer.Inference.Models.Attention;

/// <summary>
/// The key/value memory of every layer, preallocated once as one tensor and addressed by slot.
/// A slot is one token position inside one block (slot = block * BlockSize + offset); which blocks
/// belong to which request is the engine's bookkeeping, not this class's.
/// </summary>
public sealed unsafe class PagedKvCache : IDisposable
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

    /// <summary>
    /// Stores a step's keys and values at their slots, rounded to the cache's dtype as torch's cast
    /// rounds (to nearest even for bfloat16).
    /// </summary>
    /// <remarks>
    /// A host cache is written row by row here: libtorch's cast and <c>index_copy_</c> cost tens of
    /// microseconds a layer even for one token, a visible share of a decode step's fixed cost.
    /// </remarks>
    /// <param name="slots">(N) int64: each token's slot.</param>
    /// <param name="keys">(N, n_kv, hs); heads and head elements contiguous, rows at any stride.</param>
    /// <param name="values">(N, n_kv, hs), laid out as the keys.</param>
    public void Write(int layer, Tensor slots, Tensor keys, Tensor values)
    {
        if (!WritesOnHost(slots, keys) || !WritesOnHost(slots, values))
        {
            using Tensor cachedKeys = keys.to(Dtype);
            using Tensor cachedValues = values.to(Dtype);
            _keys[layer].index_copy_(0, slots, cachedKeys);
            _values[layer].index_copy_(0, slots, cachedValues);
            return;
        }
        int tokens = (int)slots.shape[0], rowElements = (int)(keys.shape[1] * keys.shape[2]);
        var slotOf = new ReadOnlySpan<long>((void*)TensorMemory.DataPointer(slots), tokens);
        long slotCount = (long)BlockCount * BlockSize;
        foreach (long slot in slotOf)
        {
            if ((ulong)slot >= (ulong)slotCount)
            {
                throw new ArgumentOutOfRangeException(nameof(slots), slot, $"a cache slot must lie in [0, {slotCount})");
            }
        }
        StoreRows(slotOf, (float*)TensorMemory.DataPointer(keys), keys.stride(0), (byte*)TensorMemory.DataPointer(_keys[layer]), rowElements);
        StoreRows(slotOf, (float*)TensorMemory.DataPointer(values), values.stride(0), (byte*)TensorMemory.DataPointer(_values[layer]), rowElements);
    }

    private bool WritesOnHost(Tensor slots, Tensor rows) =>
        Device.type == TorchSharp.DeviceType.CPU && Dtype is ScalarType.Float32 or ScalarType.BFloat16
        && rows.device_type == TorchSharp.DeviceType.CPU && rows.dtype == ScalarType.Float32 && rows.dim() == 3
        && rows.stride(2) == 1 && rows.stride(1) == rows.shape[2]
        && slots.device_type == TorchSharp.DeviceType.CPU && slots.dtype == ScalarType.Int64 && slots.dim() == 1
        && slots.is_contiguous() && slots.shape[0] == rows.shape[0];

    private void StoreRows(ReadOnlySpan<long> slots, float* rows, long rowStride, byte* cache, int rowElements)
    {
        for (int token = 0; token < slots.Length; token++)
        {
            long slot = slots[token];
            float* row = rows + token * rowStride;
            if (Dtype == ScalarType.BFloat16)
            {
                Bf16Kernels.FromSingles(row, (ushort*)cache + slot * rowElements, rowElements);
            }
            else
            {
                new ReadOnlySpan<float>(row, rowElements).CopyTo(new Span<float>((float*)cache + slot * rowElements, rowElements));
            }
        }
    }

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
