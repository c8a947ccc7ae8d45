using System.Diagnostics.CodeAnalysis;

namespace LlmServer.Inference.Models.Safetensors;

public static class SafetensorsDtypeInfo
{
    public static IReadOnlyList<SafetensorsDtype> All { get; } = Enum.GetValues<SafetensorsDtype>();

    public static int SizeInBytes(SafetensorsDtype dtype) => dtype switch
    {
        SafetensorsDtype.F64 or SafetensorsDtype.I64 => 8,
        SafetensorsDtype.F32 or SafetensorsDtype.I32 => 4,
        SafetensorsDtype.F16 or SafetensorsDtype.BF16 or SafetensorsDtype.I16 => 2,
        SafetensorsDtype.I8 or SafetensorsDtype.U8 or SafetensorsDtype.BOOL => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    /// <summary>The spelling used in a safetensors header, e.g. "BF16".</summary>
    public static string ToHeaderString(SafetensorsDtype dtype) => dtype switch
    {
        SafetensorsDtype.F64 => "F64",
        SafetensorsDtype.F32 => "F32",
        SafetensorsDtype.F16 => "F16",
        SafetensorsDtype.BF16 => "BF16",
        SafetensorsDtype.I64 => "I64",
        SafetensorsDtype.I32 => "I32",
        SafetensorsDtype.I16 => "I16",
        SafetensorsDtype.I8 => "I8",
        SafetensorsDtype.U8 => "U8",
        SafetensorsDtype.BOOL => "BOOL",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a safetensors dtype"),
    };

    // A switch rather than Enum.TryParse: that one also accepts "f32", "1" and "F32, I8", none of which
    // the format allows.
    public static bool TryParse(string? headerString, [NotNullWhen(true)] out SafetensorsDtype? dtype)
    {
        dtype = headerString switch
        {
            "F64" => SafetensorsDtype.F64,
            "F32" => SafetensorsDtype.F32,
            "F16" => SafetensorsDtype.F16,
            "BF16" => SafetensorsDtype.BF16,
            "I64" => SafetensorsDtype.I64,
            "I32" => SafetensorsDtype.I32,
            "I16" => SafetensorsDtype.I16,
            "I8" => SafetensorsDtype.I8,
            "U8" => SafetensorsDtype.U8,
            "BOOL" => SafetensorsDtype.BOOL,
            _ => null,
        };
        return dtype is not null;
    }

    public static SafetensorsDtype Parse(string headerString) =>
        TryParse(headerString, out var dtype)
            ? dtype.Value
            : throw new FormatException(
                $"unknown safetensors dtype '{headerString}' (supported: {string.Join(", ", All.Select(ToHeaderString))})");
}
