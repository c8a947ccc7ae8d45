using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Models.Safetensors;

namespace LlmServer.Inference.Tests.Models;

public sealed class SafetensorsTests : IDisposable
{
    // alpha at data bytes [0, 16), beta at [16, 24), gamma at [24, 27).
    private static readonly SafetensorsWriter.TensorToWrite[] SmallTensors =
    [
        new("alpha", SafetensorsDtype.F32, [2, 2], RandomBytes(16, seed: 1)),
        new("beta", SafetensorsDtype.I64, [1], RandomBytes(8, seed: 2)),
        new("gamma", SafetensorsDtype.U8, [3], RandomBytes(3, seed: 3)),
    ];

    private const int SmallDataSectionLength = 27;

    private readonly string _directory = Directory.CreateTempSubdirectory("safetensors-tests-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void RoundTrip_PreservesEveryDtypeShapeAndMetadata()
    {
        SafetensorsWriter.TensorToWrite[] tensors =
        [
            new("f64", SafetensorsDtype.F64, [3], RandomBytes(24, seed: 10)),
            new("f32.matrix", SafetensorsDtype.F32, [2, 3], RandomBytes(24, seed: 11)),
            new("f16", SafetensorsDtype.F16, [5], RandomBytes(10, seed: 12)),
            new("bf16", SafetensorsDtype.BF16, [1, 2, 2], RandomBytes(8, seed: 13)),
            new("i64", SafetensorsDtype.I64, [2], RandomBytes(16, seed: 14)),
            new("i32", SafetensorsDtype.I32, [2, 2], RandomBytes(16, seed: 15)),
            new("i16", SafetensorsDtype.I16, [3], RandomBytes(6, seed: 16)),
            new("i8", SafetensorsDtype.I8, [7], RandomBytes(7, seed: 17)),
            new("u8", SafetensorsDtype.U8, [1, 1, 1, 5], RandomBytes(5, seed: 18)),
            new("bool", SafetensorsDtype.BOOL, [4], new byte[] { 0, 1, 1, 0 }),
            new("scalar", SafetensorsDtype.F32, [], RandomBytes(4, seed: 19)),
            new("empty", SafetensorsDtype.F32, [0, 4], ReadOnlyMemory<byte>.Empty),
            new("a+b/ü", SafetensorsDtype.U8, [2], RandomBytes(2, seed: 20)),
        ];
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "grüße \"quoted\"\nnext line" };
        string path = PathFor("roundtrip.safetensors");

        SafetensorsWriter.Write(path, tensors, metadata);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(path, file.Path);
        Assert.Equal(metadata, file.Metadata);
        Assert.Equal(tensors.Length, file.Tensors.Count);
        foreach (SafetensorsWriter.TensorToWrite expected in tensors)
        {
            SafetensorsTensorInfo actual = file.Tensors[expected.Name];
            Assert.Equal(expected.Name, actual.Name);
            Assert.Equal(expected.Dtype, actual.Dtype);
            Assert.Equal(expected.Shape, actual.Shape);
            Assert.Equal(expected.Data.Length, actual.ByteLength);
            Assert.Equal(expected.Data.ToArray(), file.GetBytes(actual).ToArray());
        }
        Assert.Equal(1, file.Tensors["scalar"].ElementCount);
        Assert.Equal(0, file.Tensors["empty"].ElementCount);
        Assert.Equal(6, file.Tensors["f32.matrix"].ElementCount);
    }

    [Fact]
    public void Write_SortsTensorsByNameAndAlignsTheDataSection()
    {
        string path = PathFor("layout.safetensors");
        SafetensorsWriter.Write(path, SmallTensors.Reverse(), new Dictionary<string, string> { ["format"] = "pt" });

        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0, (8 + headerLength) % 8);
        Assert.Equal(8 + headerLength + SmallDataSectionLength, bytes.Length);

        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        string json = header.TrimEnd(' ');
        Assert.Equal(new string(' ', header.Length - json.Length), header[json.Length..]);
        Assert.EndsWith("}", json);

        using JsonDocument document = JsonDocument.Parse(json);
        string[] keys = document.RootElement.EnumerateObject().Select(property => property.Name).ToArray();
        Assert.Equal(["__metadata__", "alpha", "beta", "gamma"], keys);
        long[][] offsets = keys[1..]
            .Select(name => document.RootElement.GetProperty(name).GetProperty("data_offsets")
                .EnumerateArray().Select(offset => offset.GetInt64()).ToArray())
            .ToArray();
        Assert.Equal([[0, 16], [16, 24], [24, 27]], offsets);
        Assert.Equal("F32", document.RootElement.GetProperty("alpha").GetProperty("dtype").GetString());

        long dataStart = 8 + headerLength;
        Assert.Equal(SmallTensors[0].Data.ToArray(), bytes[(int)dataStart..(int)(dataStart + 16)]);
    }

    [Fact]
    public void Write_WithoutTensors_GivesAFileWithAnEmptyDataSection()
    {
        string path = PathFor("nothing.safetensors");
        SafetensorsWriter.Write(path, []);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Empty(file.Tensors);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void Open_AcceptsAFileHoldingOnlyEmptyTensors()
    {
        string path = PathFor("empty-tensors.safetensors");
        SafetensorsWriter.Write(path,
        [
            new("zero.rows", SafetensorsDtype.F32, [0, 64], ReadOnlyMemory<byte>.Empty),
            new("zero.cols", SafetensorsDtype.BF16, [3, 0], ReadOnlyMemory<byte>.Empty),
        ]);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(2, file.Tensors.Count);
        Assert.True(file.GetBytes(file.Tensors["zero.rows"]).IsEmpty);
        Assert.True(file.GetBytes(file.Tensors["zero.cols"]).IsEmpty);
    }

    [Fact]
    public void Open_AcceptsAHeaderPaddedWithManySpaces()
    {
        string path = WriteSmallFile();
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        byte[] paddedHeader = [.. bytes.AsSpan(8, headerLength), .. Enumerable.Repeat((byte)' ', 1000)];
        WriteRawFile(path, paddedHeader, bytes[(8 + headerLength)..]);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(SmallTensors[2].Data.ToArray(), file.GetBytes(file.Tensors["gamma"]).ToArray());
    }

    [Fact]
    public void Open_ListsTensorsInDataOrder()
    {
        string path = WriteSmallFile();
        RewriteHeader(path, header =>
        {
            // Same layout, but the header names the tensors in another order.
            var reordered = new JsonObject();
            foreach (string name in new[] { "gamma", "__metadata__", "alpha", "beta" })
            {
                reordered[name] = header[name]!.DeepClone();
            }
            header.Clear();
            foreach ((string name, JsonNode? value) in reordered.ToList())
            {
                header[name] = value!.DeepClone();
            }
        });

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(["alpha", "beta", "gamma"], file.Tensors.Keys);
    }

    [Fact]
    public void Write_ReplacesAnExistingFileAndLeavesNoTemporaryFile()
    {
        string path = WriteSmallFile();
        SafetensorsWriter.Write(path, [new("only", SafetensorsDtype.I32, [2], RandomBytes(8, seed: 5))]);

        Assert.False(File.Exists(path + ".tmp"));
        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(["only"], file.Tensors.Keys);
    }

    [Fact]
    public void Write_RejectsDataOfTheWrongLengthAndKeepsTheExistingFile()
    {
        string path = WriteSmallFile();
        byte[] before = File.ReadAllBytes(path);

        var e = Assert.Throws<ArgumentException>(() =>
            SafetensorsWriter.Write(path, [new("bad", SafetensorsDtype.F32, [2, 3], RandomBytes(20, seed: 6))]));

        Assert.Contains("tensor 'bad': shape [2, 3] of F32 needs 24 bytes but 20 were given", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Theory]
    [InlineData("twice", "twice", "tensor name 'twice' appears twice")]
    [InlineData("__metadata__", "other", "'__metadata__' cannot name a tensor")]
    [InlineData("", "other", "'' cannot name a tensor")]
    public void Write_RejectsUnusableNames(string firstName, string secondName, string expectedMessage)
    {
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(PathFor("names.safetensors"),
        [
            new(firstName, SafetensorsDtype.U8, [1], new byte[] { 1 }),
            new(secondName, SafetensorsDtype.U8, [1], new byte[] { 2 }),
        ]));
        Assert.Contains(expectedMessage, e.Message);
    }

    [Fact]
    public void Write_RejectsNegativeDimensions()
    {
        var e = Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(PathFor("negative.safetensors"),
            [new("bad", SafetensorsDtype.U8, [-1, -1], new byte[] { 1 })]));
        Assert.Contains("non-negative", e.Message);
    }

    [Fact]
    public void Write_OverAnOpenFile_LeavesTheOpenMappingReadingTheOldContents()
    {
        // Renaming over a mapped file is refused on Windows; the server runs on Linux.
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        string path = WriteSmallFile();
        using SafetensorsFile oldFile = SafetensorsFile.Open(path);

        SafetensorsWriter.Write(path, [new("alpha", SafetensorsDtype.F32, [2, 2], new byte[16])]);

        Assert.Equal(SmallTensors[0].Data.ToArray(), oldFile.GetBytes(oldFile.Tensors["alpha"]).ToArray());
        using SafetensorsFile newFile = SafetensorsFile.Open(path);
        Assert.Equal(new byte[16], newFile.GetBytes(newFile.Tensors["alpha"]).ToArray());
    }

    [Fact]
    public void GetBytes_RejectsATensorOutsideTheDataSection()
    {
        using SafetensorsFile file = SafetensorsFile.Open(WriteSmallFile());
        var foreign = new SafetensorsTensorInfo("foreign", SafetensorsDtype.F32, [4], DataOffset: 24, ByteLength: 16);

        var e = Assert.Throws<ArgumentException>(() => file.GetBytes(foreign).Length);
        Assert.Contains("tensor 'foreign'", e.Message);
    }

    [Fact]
    public void GetBytes_AfterDispose_Throws()
    {
        SafetensorsFile file = SafetensorsFile.Open(WriteSmallFile());
        SafetensorsTensorInfo alpha = file.Tensors["alpha"];
        file.Dispose();
        file.Dispose();

        Assert.Throws<ObjectDisposedException>(() => file.GetBytes(alpha).Length);
    }

    [Fact]
    public void Open_MissingFile()
    {
        AssertRejected(PathFor("absent.safetensors"), "missing: no such file");
    }

    [Fact]
    public void Open_Directory()
    {
        AssertRejected(_directory, "is a directory");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void Open_FileShorterThanTheHeaderLength(int length)
    {
        string path = PathFor("short.safetensors");
        File.WriteAllBytes(path, RandomBytes(length, seed: 7).ToArray());
        AssertRejected(path, $"too short: {length} bytes");
    }

    [Fact]
    public void Open_AbsurdHeaderLength()
    {
        string path = WriteSmallFile();
        OverwriteHeaderLength(path, 1L << 40);
        AssertRejected(path, "header length 1099511627776 is absurd (the limit is 100000000 bytes)");
    }

    [Fact]
    public void Open_HeaderLengthBeyondTheEndOfTheFile()
    {
        string path = WriteSmallFile();
        long fileLength = new FileInfo(path).Length;
        OverwriteHeaderLength(path, fileLength);
        AssertRejected(path, $"truncated: the header length says {fileLength} bytes of header but only {fileLength - 8} bytes follow");
    }

    [Fact]
    public void Open_HeaderThatIsNotJson()
    {
        string path = WriteSmallFile();
        FlipFileByte(path, 8, (byte)'#');
        AssertRejected(path, "header is not valid JSON (");
    }

    [Fact]
    public void Open_HeaderThatIsNotUtf8()
    {
        string path = WriteSmallFile();
        byte[] bytes = File.ReadAllBytes(path);
        int nameStart = bytes.AsSpan().IndexOf("alpha"u8);
        FlipFileByte(path, nameStart, 0xFF);
        AssertRejected(path, "header is not valid UTF-8");
    }

    [Theory]
    [InlineData("[]", "header is an array, not a JSON object")]
    [InlineData("\"alpha\"", "header is a string, not a JSON object")]
    [InlineData("{\"alpha\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [0, 0]}, "
        + "\"alpha\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [0, 0]}}", "header names 'alpha' twice")]
    [InlineData("{\"alpha\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [0, 0]}} x", "header is not valid JSON (")]
    [InlineData("", "header is not valid JSON (")]
    public void Open_HeaderWithTheWrongStructure(string headerJson, string expectedProblem)
    {
        string path = PathFor("structure.safetensors");
        WriteRawFile(path, Encoding.UTF8.GetBytes(headerJson), []);
        AssertRejected(path, expectedProblem);
    }

    [Fact]
    public void Open_TruncatedDataSection()
    {
        string path = WriteSmallFile();
        using (var stream = new FileStream(path, FileMode.Open))
        {
            stream.SetLength(stream.Length - 10);
        }
        AssertRejected(path, $"truncated: the header declares {SmallDataSectionLength} bytes of tensor data but the file holds {SmallDataSectionLength - 10}");
    }

    [Fact]
    public void Open_DataSectionLongerThanTheTensors()
    {
        string path = WriteSmallFile();
        File.AppendAllText(path, "extra");
        AssertRejected(path, $"trailing data: the tensors cover {SmallDataSectionLength} bytes but the data section holds {SmallDataSectionLength + 5}");
    }

    public static TheoryData<string, string> HeaderCorruptions => new()
    {
        { "entry is not an object", "tensor 'alpha': the entry is a number, not an object with dtype, shape and data_offsets" },
        { "dtype missing", "tensor 'alpha': missing \"dtype\"" },
        { "dtype not a string", "tensor 'alpha': \"dtype\" is a number, expected a string" },
        { "unknown dtype", "tensor 'alpha': unknown dtype 'F8_E4M3' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)" },
        { "lower-case dtype", "tensor 'alpha': unknown dtype 'f32' (supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)" },
        { "shape missing", "tensor 'alpha': missing \"shape\"" },
        { "shape not an array", "tensor 'alpha': \"shape\" is a string, expected an array" },
        { "fractional dimension", "tensor 'alpha': shape [2,2.5] has dimension 2.5, which is not a 64-bit integer" },
        { "string dimension", "tensor 'alpha': shape [2,\"2\"] has dimension \"2\", which is not a 64-bit integer" },
        { "negative dimensions", "tensor 'alpha': shape [-2,-2] has a negative dimension -2" },
        { "data_offsets missing", "tensor 'alpha': missing \"data_offsets\"" },
        { "data_offsets not a pair", "tensor 'alpha': data_offsets [0,8,16] is not [begin, end] with non-negative 64-bit integers" },
        { "negative data offset", "tensor 'alpha': data_offsets [-16,0] is not [begin, end] with non-negative 64-bit integers" },
        { "data_offsets reversed", "tensor 'alpha': data_offsets [16, 0] end before they begin" },
        { "shape too large for the bytes", "tensor 'alpha': shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 16] span 16" },
        { "dtype too small for the bytes", "tensor 'alpha': shape [2, 2] of F16 needs 8 bytes but data_offsets [0, 16] span 16" },
        { "element count overflows", "tensor 'alpha': shape [4294967296, 4294967296] has more bytes than a 64-bit size can count" },
        { "end beyond the data section", $"truncated: the header declares 37 bytes of tensor data but the file holds {SmallDataSectionLength}" },
        { "gap between tensors", "gap in the data section: no tensor covers bytes [24, 25) before tensor 'gamma'" },
        { "gap at the start", "gap in the data section: no tensor covers bytes [0, 3) before tensor 'beta'" },
        { "overlapping tensors", "overlapping tensors: 'beta' at data_offsets [8, 16] overlaps 'alpha' at [0, 16]" },
        { "tensors end before the data section", $"trailing data: the tensors cover 26 bytes but the data section holds {SmallDataSectionLength}" },
        { "no tensors but data", $"trailing data: the tensors cover 0 bytes but the data section holds {SmallDataSectionLength}" },
        { "metadata not an object", "__metadata__ is a string, not an object of strings" },
        { "metadata value not a string", "__metadata__ entry 'format' is a number; metadata values must be strings" },
    };

    [Theory]
    [MemberData(nameof(HeaderCorruptions))]
    public void Open_RejectsACorruptHeader(string corruption, string expectedProblem)
    {
        string path = WriteSmallFile();
        RewriteHeader(path, header => Corrupt(header, corruption));

        CheckpointFormatException e = AssertRejected(path, expectedProblem);
        Assert.Equal($"{path}: {expectedProblem}", e.Message);
    }

    [Fact]
    public void Open_NullMetadataMeansNone()
    {
        string path = WriteSmallFile();
        RewriteHeader(path, header => header["__metadata__"] = null);

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void Open_TheRandomGpt2Fixture()
    {
        string path = Path.Combine(TestFixtures.ModelDirectory("gpt2-random-2l-64d"), "model.safetensors");

        using SafetensorsFile file = SafetensorsFile.Open(path);

        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(2 * 12 + 4, file.Tensors.Count);
        Assert.DoesNotContain("lm_head.weight", file.Tensors.Keys);
        AssertTensor(file, "transformer.wte.weight", [50257, 64]);
        AssertTensor(file, "transformer.wpe.weight", [128, 64]);
        AssertTensor(file, "transformer.ln_f.weight", [64]);
        AssertTensor(file, "transformer.h.0.attn.c_attn.weight", [64, 192]);
        AssertTensor(file, "transformer.h.1.mlp.c_proj.weight", [256, 64]);
        Assert.All(file.Tensors.Values, tensor => Assert.Equal(SafetensorsDtype.F32, tensor.Dtype));

        ReadOnlySpan<float> embeddings = MemoryMarshal.Cast<byte, float>(file.GetBytes(file.Tensors["transformer.wte.weight"]));
        Assert.Equal(50257 * 64, embeddings.Length);
        foreach (float value in embeddings)
        {
            Assert.True(float.IsFinite(value));
        }
    }

    [Fact]
    public void DtypeInfo_SizesAndHeaderNames()
    {
        var expectedSizes = new Dictionary<SafetensorsDtype, int>
        {
            [SafetensorsDtype.F64] = 8, [SafetensorsDtype.F32] = 4, [SafetensorsDtype.F16] = 2, [SafetensorsDtype.BF16] = 2,
            [SafetensorsDtype.I64] = 8, [SafetensorsDtype.I32] = 4, [SafetensorsDtype.I16] = 2, [SafetensorsDtype.I8] = 1,
            [SafetensorsDtype.U8] = 1, [SafetensorsDtype.BOOL] = 1,
        };
        Assert.Equal(Enum.GetValues<SafetensorsDtype>().Length, expectedSizes.Count);
        foreach ((SafetensorsDtype dtype, int size) in expectedSizes)
        {
            Assert.Equal(size, SafetensorsDtypeInfo.SizeInBytes(dtype));
            string headerString = SafetensorsDtypeInfo.ToHeaderString(dtype);
            Assert.Equal(dtype.ToString(), headerString);
            Assert.Equal(dtype, SafetensorsDtypeInfo.Parse(headerString));
        }
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("1")]
    [InlineData("F32, I8")]
    [InlineData("F8_E4M3")]
    [InlineData("")]
    [InlineData(null)]
    public void DtypeInfo_RejectsWhatTheFormatDoesNotSpell(string? headerString)
    {
        Assert.False(SafetensorsDtypeInfo.TryParse(headerString, out _));
    }

    [Fact]
    public void DtypeInfo_ParseNamesTheUnknownDtype()
    {
        var e = Assert.Throws<FormatException>(() => SafetensorsDtypeInfo.Parse("U32"));
        Assert.Contains("'U32'", e.Message);
    }

    [Fact]
    public void CheckpointFormatException_KeepsItsMessageOnOneLine()
    {
        var e = new CheckpointFormatException("/m/model.safetensors", "first line\nsecond line");
        Assert.Equal("/m/model.safetensors: first line second line", e.Message);
        Assert.Equal("/m/model.safetensors", e.FilePath);
        Assert.Equal("first line second line", e.Problem);
    }

    private static void Corrupt(JsonObject header, string corruption)
    {
        JsonObject alpha = header["alpha"]!.AsObject();
        JsonObject beta = header["beta"]!.AsObject();
        JsonObject gamma = header["gamma"]!.AsObject();
        switch (corruption)
        {
            case "entry is not an object": header["alpha"] = 5; break;
            case "dtype missing": alpha.Remove("dtype"); break;
            case "dtype not a string": alpha["dtype"] = 4; break;
            case "unknown dtype": alpha["dtype"] = "F8_E4M3"; break;
            case "lower-case dtype": alpha["dtype"] = "f32"; break;
            case "shape missing": alpha.Remove("shape"); break;
            case "shape not an array": alpha["shape"] = "2x2"; break;
            case "fractional dimension": alpha["shape"] = new JsonArray(2, 2.5); break;
            case "string dimension": alpha["shape"] = new JsonArray(2, "2"); break;
            case "negative dimensions": alpha["shape"] = new JsonArray(-2, -2); break;
            case "data_offsets missing": alpha.Remove("data_offsets"); break;
            case "data_offsets not a pair": alpha["data_offsets"] = new JsonArray(0, 8, 16); break;
            case "negative data offset": alpha["data_offsets"] = new JsonArray(-16, 0); break;
            case "data_offsets reversed": alpha["data_offsets"] = new JsonArray(16, 0); break;
            case "shape too large for the bytes": alpha["shape"] = new JsonArray(2, 3); break;
            case "dtype too small for the bytes": alpha["dtype"] = "F16"; break;
            case "element count overflows": alpha["shape"] = new JsonArray(1L << 32, 1L << 32); break;
            case "end beyond the data section":
                gamma["shape"] = new JsonArray(13);
                gamma["data_offsets"] = new JsonArray(24, 37);
                break;
            case "gap between tensors":
                gamma["shape"] = new JsonArray(2);
                gamma["data_offsets"] = new JsonArray(25, 27);
                break;
            case "gap at the start":
                // beta and gamma shift up by 3 and take the bytes alpha leaves free.
                header.Remove("alpha");
                beta["data_offsets"] = new JsonArray(3, 11);
                gamma["shape"] = new JsonArray(16);
                gamma["data_offsets"] = new JsonArray(11, 27);
                break;
            case "overlapping tensors": beta["data_offsets"] = new JsonArray(8, 16); break;
            case "tensors end before the data section":
                gamma["shape"] = new JsonArray(2);
                gamma["data_offsets"] = new JsonArray(24, 26);
                break;
            case "no tensors but data":
                header.Remove("alpha");
                header.Remove("beta");
                header.Remove("gamma");
                break;
            case "metadata not an object": header["__metadata__"] = "pt"; break;
            case "metadata value not a string": header["__metadata__"] = new JsonObject { ["format"] = 1 }; break;
            default: throw new ArgumentOutOfRangeException(nameof(corruption), corruption, null);
        }
    }

    private static void AssertTensor(SafetensorsFile file, string name, long[] shape)
    {
        Assert.True(file.Tensors.TryGetValue(name, out SafetensorsTensorInfo? tensor), $"no tensor {name}");
        Assert.Equal(shape, tensor.Shape);
        Assert.Equal(SafetensorsDtype.F32, tensor.Dtype);
        Assert.Equal(tensor.ElementCount * 4, tensor.ByteLength);
        Assert.Equal(tensor.ByteLength, file.GetBytes(tensor).Length);
    }

    private static CheckpointFormatException AssertRejected(string path, string expectedProblem)
    {
        var e = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Open(path));
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        Assert.Contains(expectedProblem, e.Problem);
        Assert.DoesNotContain('\n', e.Message);
        return e;
    }

    private string PathFor(string fileName) => Path.Combine(_directory, fileName);

    private string WriteSmallFile()
    {
        string path = PathFor("model.safetensors");
        SafetensorsWriter.Write(path, SmallTensors, new Dictionary<string, string> { ["format"] = "pt" });
        return path;
    }

    private static void RewriteHeader(string path, Action<JsonObject> edit)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        JsonObject header = JsonNode.Parse(bytes.AsSpan(8, headerLength))!.AsObject();
        edit(header);
        WriteRawFile(path, Encoding.UTF8.GetBytes(header.ToJsonString()), bytes[(8 + headerLength)..]);
    }

    private static void WriteRawFile(string path, byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        File.WriteAllBytes(path, bytes);
    }

    private static void OverwriteHeaderLength(string path, long headerLength)
    {
        byte[] bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)headerLength);
        File.WriteAllBytes(path, bytes);
    }

    private static void FlipFileByte(string path, int position, byte value)
    {
        byte[] bytes = File.ReadAllBytes(path);
        bytes[position] = value;
        File.WriteAllBytes(path, bytes);
    }

    private static ReadOnlyMemory<byte> RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}
