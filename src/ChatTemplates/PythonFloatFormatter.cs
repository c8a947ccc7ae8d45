using System.Globalization;
using System.Text;

namespace LlmServer.ChatTemplates;

/// <summary>
/// Formats a double the way Python's <c>repr(float)</c> does (<c>1.0</c>, <c>0.1</c>, <c>1e-05</c>,
/// <c>1e+16</c>), so numbers in a rendered prompt match what the model saw in training.
/// .NET's round-trip format yields the same shortest digits but a different layout.
/// </summary>
internal static class PythonFloatFormatter
{
    public static string Format(double value)
    {
        if (double.IsNaN(value))
        {
            return "nan";
        }

        if (double.IsInfinity(value))
        {
            return value > 0 ? "inf" : "-inf";
        }

        bool negative = value < 0 || (value == 0 && double.IsNegative(value));
        var (digits, pointPosition) = ShortestDigits(Math.Abs(value));
        string body = digits.Length == 0 ? "0.0" : Layout(digits, pointPosition);
        return negative ? "-" + body : body;
    }

    /// <summary>
    /// Returns the significant digits without leading/trailing zeros and where the decimal point goes:
    /// the value is 0.DIGITS x 10^pointPosition. Empty digits mean zero.
    /// </summary>
    private static (string Digits, int PointPosition) ShortestDigits(double magnitude)
    {
        string roundTrip = magnitude.ToString("R", CultureInfo.InvariantCulture);
        int exponentAt = roundTrip.IndexOfAny(['E', 'e']);
        int exponent = exponentAt < 0 ? 0 : int.Parse(roundTrip[(exponentAt + 1)..], CultureInfo.InvariantCulture);
        string mantissa = exponentAt < 0 ? roundTrip : roundTrip[..exponentAt];

        int dot = mantissa.IndexOf('.');
        string integerPart = dot < 0 ? mantissa : mantissa[..dot];
        string fraction = dot < 0 ? "" : mantissa[(dot + 1)..];
        string all = integerPart + fraction;
        int pointPosition = integerPart.Length + exponent;

        int leadingZeros = all.Length - all.TrimStart('0').Length;
        all = all[leadingZeros..].TrimEnd('0');
        return (all, pointPosition - leadingZeros);
    }

    private static string Layout(string digits, int pointPosition)
    {
        int scientificExponent = pointPosition - 1;

        // Python's repr switches to scientific notation outside [1e-4, 1e16).
        if (scientificExponent is >= -4 and < 16)
        {
            if (pointPosition <= 0)
            {
                return "0." + new string('0', -pointPosition) + digits;
            }

            if (pointPosition >= digits.Length)
            {
                return digits + new string('0', pointPosition - digits.Length) + ".0";
            }

            return digits[..pointPosition] + "." + digits[pointPosition..];
        }

        var builder = new StringBuilder();
        builder.Append(digits[0]);
        if (digits.Length > 1)
        {
            builder.Append('.').Append(digits, 1, digits.Length - 1);
        }

        builder.Append('e').Append(scientificExponent < 0 ? '-' : '+');
        builder.Append(Math.Abs(scientificExponent).ToString("00", CultureInfo.InvariantCulture));
        return builder.ToString();
    }
}
