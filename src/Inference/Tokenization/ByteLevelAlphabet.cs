namespace LlmServer.Inference.Tokenization;

/// <summary>
/// GPT-2's <c>bytes_to_unicode</c> map: every byte value gets a printable character so that BPE
/// vocabularies can be stored as text. Printable Latin-1 bytes stand for themselves; the remaining 68
/// (control characters, space, DEL, NBSP, soft hyphen) are assigned U+0100 upwards in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    private const int NotAByte = -1;

    private static readonly char[] CharByByte = BuildCharByByte();
    private static readonly short[] ByteByChar = BuildByteByChar(CharByByte);

    public static char ToChar(byte value) => CharByByte[value];

    /// <summary>The byte a character of the alphabet stands for; false for characters outside it.</summary>
    public static bool TryGetByte(char character, out byte value)
    {
        if (character < ByteByChar.Length && ByteByChar[character] != NotAByte)
        {
            value = (byte)ByteByChar[character];
            return true;
        }

        value = 0;
        return false;
    }

    private static bool StandsForItself(int value) =>
        value is >= '!' and <= '~' or >= '¡' and <= '¬' or >= '®' and <= 'ÿ';

    private static char[] BuildCharByByte()
    {
        var chars = new char[256];
        int nextSubstitute = 256;
        for (int value = 0; value < 256; value++)
        {
            chars[value] = StandsForItself(value) ? (char)value : (char)nextSubstitute++;
        }

        return chars;
    }

    private static short[] BuildByteByChar(char[] charByByte)
    {
        var bytes = new short[charByByte.Max() + 1];
        Array.Fill(bytes, (short)NotAByte);
        for (int value = 0; value < charByByte.Length; value++)
        {
            bytes[charByByte[value]] = (short)value;
        }

        return bytes;
    }
}
