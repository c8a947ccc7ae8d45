using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace LlmServer.Inference.Runtime;

/// <summary>
/// Direct access to a CPU tensor's memory. TorchSharp's element accessors walk the tensor one
/// index at a time (too slow for a batch's logits on every decode step), and it exposes no address
/// that includes the storage offset, so this asks LibTorchSharp for it.
/// </summary>
internal static unsafe class TensorMemory
{
    [DllImport("LibTorchSharp")]
    private static extern IntPtr THSTensor_data(IntPtr handle);

    /// <summary>The address of a CPU tensor's first element (its storage offset included).</summary>
    public static IntPtr DataPointer(Tensor tensor)
    {
        if (tensor.device_type != TorchSharp.DeviceType.CPU)
        {
            throw new ArgumentException("only a CPU tensor's memory can be read directly", nameof(tensor));
        }
        IntPtr data = THSTensor_data(tensor.Handle);
        if (data == IntPtr.Zero)
        {
            throw new InvalidOperationException("libtorch returned no data pointer for a CPU tensor");
        }
        return data;
    }

    /// <summary>The elements of a contiguous CPU float32 tensor, valid while the tensor lives.</summary>
    public static ReadOnlySpan<float> AsFloatSpan(Tensor tensor)
    {
        if (tensor.dtype != ScalarType.Float32 || !tensor.is_contiguous())
        {
            throw new ArgumentException("expected a contiguous float32 tensor", nameof(tensor));
        }
        return new ReadOnlySpan<float>((void*)DataPointer(tensor), checked((int)tensor.numel()));
    }
}

/// <summary>
/// A contiguous CPU float32 tensor's elements as <see cref="Memory{T}"/>, for handing them on without a copy.
/// Holds no reference that keeps the tensor alive: the memory is valid while the tensor lives.
/// </summary>
internal sealed unsafe class NativeFloats : System.Buffers.MemoryManager<float>
{
    private readonly float* _start;
    private readonly int _length;

    public NativeFloats(Tensor tensor)
    {
        ReadOnlySpan<float> elements = TensorMemory.AsFloatSpan(tensor);
        _start = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(elements));
        _length = elements.Length;
    }

    public override Span<float> GetSpan() => new(_start, _length);

    // Native memory does not move, so pinning only hands out its address.
    public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => new(_start + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
