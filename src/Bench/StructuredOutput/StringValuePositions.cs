namespace LlmServer.Bench.StructuredOutput;

/// <summary>
/// Where a JSON text is inside a string value: the split of the per-token mask cost. Inside a free string
/// almost every token is allowed and the mask is mostly a precomputed copy; everywhere else (keys, which a strict
/// schema fixes, punctuation, numbers, literals) the trie is walked. Lexical only: the text must be valid JSON.
/// </summary>
public static class StringValuePositions
{
    /// <summary>
    /// For each offset 0 .. length of <paramref name="utf8"/> (the end included), whether the bytes before it end
    /// inside a string value: after its opening quote, before its closing one. Keys do not count.
    /// </summary>
    public static bool[] Find(ReadOnlySpan<byte> utf8)
    {
        var inValue = new bool[utf8.Length + 1];
        var containers = new Stack<byte>();
        bool expectKey = false, inString = false, isKey = false, escaped = false;
        for (int i = 0; i < utf8.Length; i++)
        {
            inValue[i] = inString && !isKey;
            byte b = utf8[i];
            if (inString)
            {
                if (escaped)
                {
                    escaped = false;
                }
                else if (b == '\\')
                {
                    escaped = true;
                }
                else if (b == '"')
                {
                    inString = false;
                }

                continue;
            }

            switch (b)
            {
                case (byte)'{' or (byte)'[':
                    containers.Push(b);
                    expectKey = b == '{';
                    break;
                case (byte)'}' or (byte)']':
                    containers.Pop();
                    break;
                case (byte)',':
                    expectKey = containers.Count > 0 && containers.Peek() == '{';
                    break;
                case (byte)':':
                    expectKey = false;
                    break;
                case (byte)'"':
                    inString = true;
                    isKey = expectKey;
                    break;
            }
        }

        inValue[utf8.Length] = inString && !isKey;
        return inValue;
    }
}
