using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace LlmServer.Inference.KvCache;

/// <summary>
/// Identifies the content of one full block: its tokens and, through the parent's hash, every token
/// before them. Two blocks with the same hash hold the same keys and values. SHA-256 (truncated to
/// 128 bits) rather than a fast non-cryptographic hash, so that no crafted prompt can collide with
/// another user's cached prefix.
/// </summary>
public readonly record struct BlockHash(UInt128 Value)
{
    public static BlockHash Of(BlockHash? parent, ReadOnlySpan<int> tokens)
    {
        Span<byte> input = stackalloc byte[16 + tokens.Length * sizeof(int)];
        MemoryMarshal.Write(input, parent?.Value ?? UInt128.Zero);
        MemoryMarshal.AsBytes(tokens).CopyTo(input[16..]);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(input, digest);
        return new BlockHash(MemoryMarshal.Read<UInt128>(digest));
    }
}
