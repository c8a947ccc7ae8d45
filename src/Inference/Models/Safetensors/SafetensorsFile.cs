using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text.Json;
using System.Text.Unicode;

namespace LlmServer.Inference.Models.Safetensors;

/// <summary>A safetensors checkpoint, memory-mapped read-only and fully validated when opened, so that
/// a bad file fails at startup with one clear line instead of deep inside model loading.</summary>
/// <remarks>The layout rules are the reference implementation's (huggingface/safetensors): the tensors
/// must cover the data section exactly, in any header order, with no gap, overlap or trailing bytes.</remarks>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>The reference implementation's limit. A larger length means a corrupt or foreign file,
    /// and trusting it would allocate that much before failing.</summary>
    public const long MaxHeaderLength = 100_000_000;

    private const int HeaderLengthPrefixSize = sizeof(ulong);
    private const string MetadataKey = "__metadata__";
    private const int MaxQuotedJsonLength = 80;

    private readonly MemoryMappedFile _mapping;
    private readonly MemoryMappedViewAccessor _view;
    private readonly unsafe byte* _dataSection;
    private readonly long _dataSectionLength;
    private bool _disposed;

    private unsafe SafetensorsFile(
        string path,
        IReadOnlyDictionary<string, SafetensorsTensorInfo> tensors,
        IReadOnlyDictionary<string, string> metadata,
        MemoryMappedFile mapping,
        MemoryMappedViewAccessor view,
        byte* dataSection,
        long dataSectionLength)
    {
        Path = path;
        Tensors = tensors;
        Metadata = metadata;
        _mapping = mapping;
        _view = view;
        _dataSection = dataSection;
        _dataSectionLength = dataSectionLength;
    }

    public string Path { get; }

    /// <summary>The tensors by name, enumerated in the order of their data in the file.</summary>
    public IReadOnlyDictionary<string, SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The header's <c>__metadata__</c>, empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <exception cref="CheckpointFormatException">The file is missing, unreadable or not a valid safetensors file.</exception>
    public static SafetensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FileStream stream = OpenForReading(path);
        try
        {
            return OpenValidated(path, stream);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>The tensor's bytes, read straight from the mapped file: valid until this file is disposed.</summary>
    /// <remarks>The data section starts 8-byte aligned in files this server writes, but nothing guarantees a
    /// tensor is aligned to its element size, so reinterpret with <c>MemoryMarshal.Cast</c> (which allows
    /// unaligned data) rather than with aligned loads.</remarks>
    public unsafe ReadOnlySpan<byte> GetBytes(SafetensorsTensorInfo tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (tensor.DataOffset < 0 || tensor.ByteLength < 0 || tensor.DataOffset > _dataSectionLength - tensor.ByteLength)
        {
            throw new ArgumentException(
                $"tensor '{tensor.Name}' at data offset {tensor.DataOffset} with {tensor.ByteLength} bytes lies outside " +
                $"the {_dataSectionLength}-byte data section of {Path}",
                nameof(tensor));
        }
        if (tensor.ByteLength > int.MaxValue)
        {
            throw new NotSupportedException(
                $"{Path}: tensor '{tensor.Name}' has {tensor.ByteLength} bytes, more than a span can hold ({int.MaxValue})");
        }
        return new ReadOnlySpan<byte>(_dataSection + tensor.DataOffset, (int)tensor.ByteLength);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mapping.Dispose();
    }

    private static FileStream OpenForReading(string path)
    {
        try
        {
            // FileShare.Delete so a writer can still replace the file by renaming over it.
            return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 0);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new CheckpointFormatException(path, "missing: no such file");
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            string problem = Directory.Exists(path)
                ? "is a directory, not a safetensors file"
                : $"cannot be read ({e.Message})";
            throw new CheckpointFormatException(path, problem, e);
        }
    }

    private static unsafe SafetensorsFile OpenValidated(string path, FileStream stream)
    {
        long fileLength = stream.Length;
        if (fileLength < HeaderLengthPrefixSize)
        {
            throw new CheckpointFormatException(path,
                $"too short: {fileLength} bytes, but a safetensors file starts with an {HeaderLengthPrefixSize}-byte header length");
        }

        Span<byte> prefix = stackalloc byte[HeaderLengthPrefixSize];
        stream.ReadExactly(prefix);
        ulong declaredHeaderLength = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
        long bytesAfterPrefix = fileLength - HeaderLengthPrefixSize;
        if (declaredHeaderLength > MaxHeaderLength)
        {
            throw new CheckpointFormatException(path,
                $"header length {declaredHeaderLength} is absurd (the limit is {MaxHeaderLength} bytes): " +
                "not a safetensors file, or its first 8 bytes are corrupt");
        }
        if ((long)declaredHeaderLength > bytesAfterPrefix)
        {
            throw new CheckpointFormatException(path,
                $"truncated: the header length says {declaredHeaderLength} bytes of header but only {bytesAfterPrefix} bytes follow");
        }

        var header = new byte[(int)declaredHeaderLength];
        stream.ReadExactly(header);
        long dataSectionLength = bytesAfterPrefix - header.Length;
        (List<SafetensorsTensorInfo> tensorsInFileOrder, Dictionary<string, string> metadata) =
            ParseHeader(path, header, dataSectionLength);

        // The whole file is mapped, not just the data section, because a mapping cannot be empty
        // and the data section of a file holding only empty tensors is.
        MemoryMappedFile mapping = MemoryMappedFile.CreateFromFile(
            stream, mapName: null, capacity: 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        MemoryMappedViewAccessor? view = null;
        try
        {
            view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            byte* fileStart = null;
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref fileStart);
            byte* dataSection = fileStart + view.PointerOffset + HeaderLengthPrefixSize + header.Length;
            return new SafetensorsFile(
                path,
                tensorsInFileOrder.ToDictionary(tensor => tensor.Name, StringComparer.Ordinal).AsReadOnly(),
                metadata.AsReadOnly(),
                mapping,
                view,
                dataSection,
                dataSectionLength);
        }
        catch
        {
            view?.Dispose();
            mapping.Dispose();
            throw;
        }
    }

    private static (List<SafetensorsTensorInfo> TensorsInFileOrder, Dictionary<string, string> Metadata) ParseHeader(
        string path, byte[] header, long dataSectionLength)
    {
        // Checked first because the JSON parser does not validate UTF-8 inside strings it is not asked to decode.
        if (!Utf8.IsValid(header))
        {
            throw new CheckpointFormatException(path, "header is not valid UTF-8");
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header);
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, $"header is not valid JSON ({e.Message})", e);
        }

        using (document)
        {
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new CheckpointFormatException(path, $"header is {Describe(root.ValueKind)}, not a JSON object");
            }

            var tensors = new List<SafetensorsTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seenKeys = new HashSet<string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in root.EnumerateObject())
            {
                if (!seenKeys.Add(entry.Name))
                {
                    throw new CheckpointFormatException(path, $"header names '{entry.Name}' twice");
                }
                if (entry.Name == MetadataKey)
                {
                    metadata = ParseMetadata(path, entry.Value);
                }
                else
                {
                    tensors.Add(ParseTensor(path, entry.Name, entry.Value));
                }
            }

            tensors.Sort((a, b) => a.DataOffset != b.DataOffset
                ? a.DataOffset.CompareTo(b.DataOffset)
                : a.ByteLength.CompareTo(b.ByteLength));
            CheckTensorsCoverDataSection(path, tensors, dataSectionLength);
            return (tensors, metadata);
        }
    }

    private static Dictionary<string, string> ParseMetadata(string path, JsonElement value)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        if (value.ValueKind == JsonValueKind.Null)
        {
            return metadata;
        }
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new CheckpointFormatException(path,
                $"{MetadataKey} is {Describe(value.ValueKind)}, not an object of strings");
        }
        foreach (JsonProperty item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw new CheckpointFormatException(path,
                    $"{MetadataKey} entry '{item.Name}' is {Describe(item.Value.ValueKind)}; metadata values must be strings");
            }
            if (!metadata.TryAdd(item.Name, item.Value.GetString()!))
            {
                throw new CheckpointFormatException(path, $"{MetadataKey} names '{item.Name}' twice");
            }
        }
        return metadata;
    }

    private static SafetensorsTensorInfo ParseTensor(string path, string name, JsonElement entry)
    {
        CheckpointFormatException Bad(string problem) => new(path, $"tensor '{name}': {problem}");

        if (entry.ValueKind != JsonValueKind.Object)
        {
            throw Bad($"the entry is {Describe(entry.ValueKind)}, not an object with dtype, shape and data_offsets");
        }

        JsonElement Field(string field, JsonValueKind kind)
        {
            if (!entry.TryGetProperty(field, out JsonElement value))
            {
                throw Bad($"missing \"{field}\"");
            }
            if (value.ValueKind != kind)
            {
                throw Bad($"\"{field}\" is {Describe(value.ValueKind)}, expected {Describe(kind)}");
            }
            return value;
        }

        string dtypeText = Field("dtype", JsonValueKind.String).GetString()!;
        if (!SafetensorsDtypeInfo.TryParse(dtypeText, out SafetensorsDtype? parsedDtype))
        {
            throw Bad($"unknown dtype '{dtypeText}' (supported: " +
                $"{string.Join(", ", SafetensorsDtypeInfo.All.Select(SafetensorsDtypeInfo.ToHeaderString))})");
        }
        SafetensorsDtype dtype = parsedDtype.Value;

        JsonElement shapeElement = Field("shape", JsonValueKind.Array);
        var shape = new long[shapeElement.GetArrayLength()];
        int axis = 0;
        foreach (JsonElement dimension in shapeElement.EnumerateArray())
        {
            if (dimension.ValueKind != JsonValueKind.Number || !dimension.TryGetInt64(out long size))
            {
                throw Bad($"shape {Quote(shapeElement)} has dimension {Quote(dimension)}, which is not a 64-bit integer");
            }
            if (size < 0)
            {
                throw Bad($"shape {Quote(shapeElement)} has a negative dimension {size}");
            }
            shape[axis++] = size;
        }

        JsonElement offsetsElement = Field("data_offsets", JsonValueKind.Array);
        if (offsetsElement.GetArrayLength() != 2
            || !TryGetNonNegativeInt64(offsetsElement[0], out long begin)
            || !TryGetNonNegativeInt64(offsetsElement[1], out long end))
        {
            throw Bad($"data_offsets {Quote(offsetsElement)} is not [begin, end] with non-negative 64-bit integers");
        }
        if (end < begin)
        {
            throw Bad($"data_offsets [{begin}, {end}] end before they begin");
        }

        long expectedByteLength;
        try
        {
            expectedByteLength = checked(SafetensorsTensorInfo.CountElements(shape) * SafetensorsDtypeInfo.SizeInBytes(dtype));
        }
        catch (OverflowException)
        {
            throw Bad($"shape {FormatShape(shape)} has more bytes than a 64-bit size can count");
        }
        if (end - begin != expectedByteLength)
        {
            throw Bad($"shape {FormatShape(shape)} of {dtypeText} needs {expectedByteLength} bytes " +
                $"but data_offsets [{begin}, {end}] span {end - begin}");
        }

        return new SafetensorsTensorInfo(name, dtype, shape, begin, end - begin);
    }

    private static void CheckTensorsCoverDataSection(
        string path, List<SafetensorsTensorInfo> tensorsByOffset, long dataSectionLength)
    {
        long declaredDataLength = tensorsByOffset.Count == 0
            ? 0
            : tensorsByOffset.Max(tensor => tensor.DataOffset + tensor.ByteLength);
        if (declaredDataLength > dataSectionLength)
        {
            throw new CheckpointFormatException(path,
                $"truncated: the header declares {declaredDataLength} bytes of tensor data but the file holds {dataSectionLength}");
        }

        long coveredUpTo = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (SafetensorsTensorInfo tensor in tensorsByOffset)
        {
            if (tensor.DataOffset > coveredUpTo)
            {
                throw new CheckpointFormatException(path,
                    $"gap in the data section: no tensor covers bytes [{coveredUpTo}, {tensor.DataOffset}) before tensor '{tensor.Name}'");
            }
            if (tensor.DataOffset < coveredUpTo)
            {
                throw new CheckpointFormatException(path,
                    $"overlapping tensors: '{tensor.Name}' at data_offsets {FormatOffsets(tensor)} " +
                    $"overlaps '{previous!.Name}' at {FormatOffsets(previous)}");
            }
            coveredUpTo = tensor.DataOffset + tensor.ByteLength;
            previous = tensor;
        }

        if (coveredUpTo != dataSectionLength)
        {
            throw new CheckpointFormatException(path,
                $"trailing data: the tensors cover {coveredUpTo} bytes but the data section holds {dataSectionLength}");
        }
    }

    private static bool TryGetNonNegativeInt64(JsonElement element, out long value)
    {
        value = 0;
        return element.ValueKind == JsonValueKind.Number && element.TryGetInt64(out value) && value >= 0;
    }

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };

    // Header text is untrusted: keep a quoted fragment short enough for a one-line message.
    private static string Quote(JsonElement element)
    {
        string raw = element.GetRawText();
        return raw.Length <= MaxQuotedJsonLength ? raw : string.Concat(raw.AsSpan(0, MaxQuotedJsonLength), "...");
    }

    private static string FormatShape(long[] shape) => $"[{string.Join(", ", shape)}]";

    private static string FormatOffsets(SafetensorsTensorInfo tensor) =>
        $"[{tensor.DataOffset}, {tensor.DataOffset + tensor.ByteLength}]";
}
