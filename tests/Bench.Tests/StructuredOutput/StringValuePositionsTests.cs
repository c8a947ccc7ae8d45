using System.Text;
using LlmServer.Bench.StructuredOutput;

namespace LlmServer.Bench.Tests.StructuredOutput;

public sealed class StringValuePositionsTests
{
    /// <summary>The offsets inside string values of <paramref name="json"/>, as a string of 's' (inside) and '.' (not), one per offset, the end included.</summary>
    private static string Marks(string json) =>
        string.Concat(StringValuePositions.Find(Encoding.UTF8.GetBytes(json)).Select(inside => inside ? 's' : '.'));

    [Theory]
    // Offsets after the opening quote up to and including the closing quote's are inside; a key's are not.
    [InlineData("""{"k":"ab"}""", "......sss..")]
    [InlineData("""["a","b"]""", "..ss..ss..")]
    // An escaped quote does not close the string, and after a value the next key is a key again.
    [InlineData("""{"a":"x\"y","b":1}""", "......sssss........")]
    // A string value in an array inside an object is a value, and so is the object's next string after a comma.
    [InlineData("""{"t":["p"],"u":"q"}""", ".......ss.......ss..")]
    public void StringValues_AreMarked_KeysAndEscapedQuotesAreNot(string json, string expected)
    {
        Assert.Equal(expected, Marks(json));
    }

    [Fact]
    public void MultiByteCharacters_AreInsideTheirString_ByteByByte()
    {
        // "é" is two UTF-8 bytes: both offsets after the opening quote are inside.
        Assert.Equal("..sss..", Marks("""["é"]"""));
    }
}
