namespace LlmServer.Inference.Models.Safetensors;

/// <summary>One tensor's entry in a safetensors header.</summary>
/// <param name="DataOffset">Where the tensor's bytes begin, counted from the start of the data section
/// (the first byte after the header), as in the header's data_offsets.</param>
public sealed record SafetensorsTensorInfo(string Name, SafetensorsDtype Dtype, long[] Shape, long DataOffset, long ByteLength)
{
    /// <summary>The product of the dimensions: 1 for a scalar (empty shape), 0 when any dimension is 0.</summary>
    public long ElementCount { get; } = CountElements(Shape);

    public int ElementSize => SafetensorsDtypeInfo.SizeInBytes(Dtype);

    public static long CountElements(ReadOnlySpan<long> shape)
    {
        long count = 1;
        foreach (long dimension in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(dimension, nameof(shape));
            count = checked(count * dimension);
        }
        return count;
    }

    // The generated ToString would print the shape as "System.Int64[]".
    public override string ToString() =>
        $"{Name} {SafetensorsDtypeInfo.ToHeaderString(Dtype)}[{string.Join(", ", Shape)}] at {DataOffset}+{ByteLength}";
}
