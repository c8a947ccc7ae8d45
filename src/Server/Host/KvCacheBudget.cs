using System.Globalization;

namespace LlmServer.Host;

/// <summary>--kv-cache-memory: a size ("2GiB", "512MB", bytes) or a fraction in (0, 1] of the memory left after the weights.</summary>
public readonly record struct KvCacheBudget(long Bytes, double? Fraction)
{
    public static bool TryParse(string? text, out KvCacheBudget budget)
    {
        budget = default;
        if (text is not null && text.Contains('.') && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double fraction)
            && fraction is > 0 and <= 1)
        {
            budget = new KvCacheBudget(0, fraction);
            return true;
        }
        if (ByteSize.TryParse(text, out long bytes))
        {
            budget = new KvCacheBudget(bytes, null);
            return true;
        }
        return false;
    }
}
