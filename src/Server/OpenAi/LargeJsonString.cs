using System.Buffers.Text;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace LlmServer.OpenAi;

/// <summary>
/// Reads long JSON strings (prompts, message contents) into .NET strings without renting from
/// <c>ArrayPool.Shared</c>.
/// </summary>
/// <remarks>
/// System.Text.Json unescapes a string that contains escapes (<c>\n</c>, <c>\"</c>, or <c>\uXXXX</c>,
/// which is how Python's json.dumps sends every non-ASCII character) through a scratch buffer rented
/// from the shared pool at the string's full length, and the pool keeps it for the life of the
/// process. Past <see cref="Threshold"/> this unescapes into an array of its own, which is garbage
/// as soon as the string exists. Behaviour otherwise matches <see cref="JsonElement.GetString"/>:
/// invalid UTF-8 and unpaired surrogate escapes throw <see cref="InvalidOperationException"/>.
/// </remarks>
public static class LargeJsonString
{
    /// <summary>Below this many raw bytes System.Text.Json decodes: the arrays it pools for that are small.</summary>
    public const int Threshold = 64 * 1024;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The string value of <paramref name="element"/>, which must be a JSON string.</summary>
    public static string GetString(JsonElement element)
    {
        if (element.ValueKind != JsonValueKind.String)
        {
            return element.GetString()!;
        }
        ReadOnlySpan<byte> raw = JsonMarshal.GetRawUtf8Value(element);
        // The raw value keeps its quotes.
        return raw.Length - 2 < Threshold ? element.GetString()! : Decode(raw[1..^1]);
    }

    /// <summary>Decodes the bytes between a JSON string's quotes.</summary>
    public static string Decode(ReadOnlySpan<byte> escaped)
    {
        int backslash = escaped.IndexOf((byte)'\\');
        if (backslash < 0)
        {
            return Transcode(escaped);
        }
        // Unescaping never lengthens: every escape is at least as long as the UTF-8 it stands for.
        byte[] unescaped = GC.AllocateUninitializedArray<byte>(escaped.Length);
        escaped[..backslash].CopyTo(unescaped);
        int written = backslash;
        int i = backslash;
        while (i < escaped.Length)
        {
            byte current = escaped[i];
            if (current != '\\')
            {
                int run = escaped[i..].IndexOf((byte)'\\');
                int length = run < 0 ? escaped.Length - i : run;
                escaped.Slice(i, length).CopyTo(unescaped.AsSpan(written));
                written += length;
                i += length;
                continue;
            }
            // The reader has already checked the escapes' syntax.
            byte kind = escaped[i + 1];
            i += 2;
            if (kind != 'u')
            {
                unescaped[written++] = kind switch
                {
                    (byte)'n' => (byte)'\n',
                    (byte)'t' => (byte)'\t',
                    (byte)'r' => (byte)'\r',
                    (byte)'b' => (byte)'\b',
                    (byte)'f' => (byte)'\f',
                    _ => kind, // \" \\ \/
                };
                continue;
            }
            int scalar = ReadUnicodeEscape(escaped, ref i)
                ?? throw new InvalidOperationException("Cannot read invalid UTF-16 JSON text as string: a surrogate escape without its other half.");
            written += new Rune(scalar).EncodeToUtf8(unescaped.AsSpan(written));
        }
        return Transcode(unescaped.AsSpan(0, written));
    }

    /// <summary>
    /// Whether <see cref="Decode"/> would succeed on the bytes between a JSON string's quotes, decoding
    /// nothing: UTF-8 between the escapes, and every surrogate escape paired. The checks of a request's
    /// free-form values use it, so a long prompt is not decoded once to be checked and again to be read.
    /// </summary>
    public static bool IsWellFormed(ReadOnlySpan<byte> escaped)
    {
        int i = 0;
        while (true)
        {
            int backslash = escaped[i..].IndexOf((byte)'\\');
            // An escape is ASCII, so a UTF-8 sequence never spans one: each run can be checked alone.
            if (!Utf8.IsValid(backslash < 0 ? escaped[i..] : escaped.Slice(i, backslash)))
            {
                return false;
            }
            if (backslash < 0)
            {
                return true;
            }
            i += backslash;
            byte kind = escaped[i + 1];
            i += 2;
            if (kind != 'u')
            {
                continue;
            }
            if (ReadUnicodeEscape(escaped, ref i) is null)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// The scalar of the \u escape whose hex digits start at <paramref name="i"/>, read with its low
    /// half when it is a high surrogate; <paramref name="i"/> moves past what was read. Null for a
    /// surrogate without its other half, which no UTF-8 can stand for.
    /// </summary>
    private static int? ReadUnicodeEscape(ReadOnlySpan<byte> escaped, ref int i)
    {
        int unit = ReadHex(escaped.Slice(i, 4));
        i += 4;
        if (char.IsHighSurrogate((char)unit))
        {
            int low = i + 6 <= escaped.Length && escaped[i] == '\\' && escaped[i + 1] == 'u' ? ReadHex(escaped.Slice(i + 2, 4)) : -1;
            if (low < 0 || !char.IsLowSurrogate((char)low))
            {
                return null;
            }
            i += 6;
            return char.ConvertToUtf32((char)unit, (char)low);
        }
        return char.IsLowSurrogate((char)unit) ? null : unit;
    }

    private static int ReadHex(ReadOnlySpan<byte> hex) =>
        Utf8Parser.TryParse(hex, out ushort value, out int consumed, 'X') && consumed == 4
            ? value
            : throw new InvalidOperationException("A \\u escape in a JSON string is not four hexadecimal digits.");

    private static string Transcode(ReadOnlySpan<byte> utf8)
    {
        try
        {
            return StrictUtf8.GetString(utf8);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidOperationException("Cannot transcode invalid UTF-8 JSON text to UTF-16 string.", e);
        }
    }
}
