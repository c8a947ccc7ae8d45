using System.Runtime.InteropServices;

namespace LlmServer.Inference.Quantization;

/// <summary>
/// Native memory for a product's intermediate values, grown to the largest size asked for and kept,
/// so products of a size seen before allocate nothing. Not thread-safe: owners keep one per thread.
/// </summary>
internal sealed unsafe class ScratchBuffer
{
    private void* _memory;
    private long _bytes;

    /// <summary>Room for <paramref name="count"/> values, 64-byte aligned; the contents are whatever was left there.</summary>
    public T* For<T>(long count) where T : unmanaged
    {
        long bytes = count * sizeof(T);
        if (bytes > _bytes)
        {
            NativeMemory.AlignedFree(_memory);
            _memory = NativeMemory.AlignedAlloc((nuint)bytes, 64);
            _bytes = bytes;
        }
        return (T*)_memory;
    }
}
