using System.Globalization;
using System.Text.RegularExpressions;

namespace LlmServer.Host;

/// <summary>Parses sizes such as "1073741824", "512MB", "2GiB" (decimal and binary units).</summary>
public static partial class ByteSize
{
    [GeneratedRegex(@"^\s*(?<number>[0-9]+(\.[0-9]+)?)\s*(?<unit>[KMGT]i?B|B)?\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();

    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        Match match = text is null ? Match.Empty : Pattern().Match(text);
        if (!match.Success)
        {
            return false;
        }
        double number = double.Parse(match.Groups["number"].Value, CultureInfo.InvariantCulture);
        string unit = match.Groups["unit"].Value.ToUpperInvariant();
        double scale = unit switch
        {
            "" or "B" => 1,
            "KB" => 1e3, "MB" => 1e6, "GB" => 1e9, "TB" => 1e12,
            "KIB" => 1L << 10, "MIB" => 1L << 20, "GIB" => 1L << 30, "TIB" => 1L << 40,
            _ => double.NaN,
        };
        double value = number * scale;
        if (double.IsNaN(value) || value < 1 || value > long.MaxValue)
        {
            return false;
        }
        bytes = (long)value;
        return true;
    }
}
