using System.Buffers;
using System.Buffers.Binary;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace LlmServer.Inference.Models.Safetensors;

public static class SafetensorsWriter
{
    public sealed record TensorToWrite(string Name, SafetensorsDtype Dtype, long[] Shape, ReadOnlyMemory<byte> Data);

    private const string MetadataKey = "__metadata__";
    private const int DataSectionAlignment = 8;
    private const int HeaderLengthPrefixSize = sizeof(ulong);

    /// <summary>Writes a safetensors file that <see cref="SafetensorsFile.Open"/> and the reference
    /// implementation accept: tensors sorted by name, stored back to back, and a header padded with spaces
    /// so the data section starts 8-byte aligned.</summary>
    /// <remarks>The file is written to "&lt;path&gt;.tmp" and renamed over <paramref name="path"/>, so the final
    /// name never holds a partial file, and a process that has the old file memory-mapped keeps reading the old
    /// contents instead of faulting on pages truncated under it.</remarks>
    /// <exception cref="ArgumentException">A tensor's name, shape or data length is invalid, or two share a name.</exception>
    public static void Write(string path, IEnumerable<TensorToWrite> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);

        List<TensorToWrite> sortedTensors = tensors.ToList();
        foreach (TensorToWrite tensor in sortedTensors)
        {
            Validate(tensor);
        }
        sortedTensors.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        for (int i = 1; i < sortedTensors.Count; i++)
        {
            if (sortedTensors[i].Name == sortedTensors[i - 1].Name)
            {
                throw new ArgumentException($"tensor name '{sortedTensors[i].Name}' appears twice", nameof(tensors));
            }
        }
        if (metadata is not null)
        {
            foreach ((string key, string value) in metadata)
            {
                if (value is null)
                {
                    throw new ArgumentException($"metadata '{key}' has a null value", nameof(metadata));
                }
            }
        }

        byte[] header = BuildHeader(sortedTensors, metadata);
        string temporaryPath = path + ".tmp";
        try
        {
            using (var stream = new FileStream(temporaryPath, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 1 << 16))
            {
                Span<byte> prefix = stackalloc byte[HeaderLengthPrefixSize];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                stream.Write(prefix);
                stream.Write(header);
                foreach (TensorToWrite tensor in sortedTensors)
                {
                    stream.Write(tensor.Data.Span);
                }
                // Durable before the rename, or a crash could leave the final name on an empty file.
                stream.Flush(flushToDisk: true);
            }
            File.Move(temporaryPath, path, overwrite: true);
        }
        catch
        {
            TryDelete(temporaryPath);
            throw;
        }
    }

    private static void Validate(TensorToWrite tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (string.IsNullOrEmpty(tensor.Name) || tensor.Name == MetadataKey)
        {
            throw new ArgumentException($"'{tensor.Name}' cannot name a tensor", nameof(tensor));
        }
        if (!Enum.IsDefined(tensor.Dtype))
        {
            throw new ArgumentException($"tensor '{tensor.Name}': {tensor.Dtype} is not a safetensors dtype", nameof(tensor));
        }
        if (tensor.Shape is null || tensor.Shape.Any(dimension => dimension < 0))
        {
            throw new ArgumentException(
                $"tensor '{tensor.Name}': shape must be an array of non-negative dimensions", nameof(tensor));
        }
        long expectedByteLength;
        try
        {
            expectedByteLength = checked(SafetensorsTensorInfo.CountElements(tensor.Shape) * SafetensorsDtypeInfo.SizeInBytes(tensor.Dtype));
        }
        catch (OverflowException)
        {
            throw new ArgumentException($"tensor '{tensor.Name}': shape has more bytes than a 64-bit size can count", nameof(tensor));
        }
        if (tensor.Data.Length != expectedByteLength)
        {
            throw new ArgumentException(
                $"tensor '{tensor.Name}': shape [{string.Join(", ", tensor.Shape)}] of {tensor.Dtype} needs " +
                $"{expectedByteLength} bytes but {tensor.Data.Length} were given",
                nameof(tensor));
        }
    }

    private static byte[] BuildHeader(List<TensorToWrite> sortedTensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps names such as "a+b" and non-ASCII metadata readable; the header is never
        // embedded in HTML, which is what the default escaping guards against.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach ((string key, string value) in metadata.OrderBy(item => item.Key, StringComparer.Ordinal))
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }

            long dataOffset = 0;
            foreach (TensorToWrite tensor in sortedTensors)
            {
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", SafetensorsDtypeInfo.ToHeaderString(tensor.Dtype));
                json.WriteStartArray("shape");
                foreach (long dimension in tensor.Shape)
                {
                    json.WriteNumberValue(dimension);
                }
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(dataOffset);
                json.WriteNumberValue(dataOffset + tensor.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                dataOffset += tensor.Data.Length;
            }
            json.WriteEndObject();
        }

        int unpaddedLength = buffer.WrittenCount;
        int padding = (DataSectionAlignment - (HeaderLengthPrefixSize + unpaddedLength) % DataSectionAlignment) % DataSectionAlignment;
        var header = new byte[unpaddedLength + padding];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(unpaddedLength).Fill((byte)' ');
        return header;
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // The original failure matters more than a leftover temporary file.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
