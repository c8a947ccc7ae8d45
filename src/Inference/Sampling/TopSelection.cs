namespace LlmServer.Inference.Sampling;

/// <summary>
/// Top-k and top-p (nucleus) cuts by selection instead of sorting the vocabulary: quickselect
/// partitions the candidates in expected linear time. Candidates are ordered by weight, heavier
/// first, and by token id among equal weights, so the result never depends on the input order.
/// </summary>
internal static class TopSelection
{
    private const int SortBelow = 32;

    /// <summary>Rearranges <paramref name="candidates"/> so its first k are the k heaviest; returns them.</summary>
    public static Span<int> KeepLargest(Span<int> candidates, ReadOnlySpan<float> weights, int k)
    {
        int lo = 0, hi = candidates.Length;
        while (hi - lo > 1)
        {
            int pivot = Partition(candidates, weights, lo, hi);
            if (pivot == k)
            {
                break;
            }
            if (pivot > k)
            {
                hi = pivot;
            }
            else
            {
                lo = pivot + 1;
            }
        }
        return candidates[..k];
    }

    /// <summary>
    /// Rearranges <paramref name="candidates"/> so it starts with the smallest set of heaviest
    /// tokens whose weight reaches <paramref name="topP"/> of the total; returns that set.
    /// </summary>
    public static Span<int> KeepNucleus(Span<int> candidates, ReadOnlySpan<float> weights, double topP)
    {
        double total = 0;
        foreach (int token in candidates)
        {
            total += weights[token];
        }
        double needed = topP * total;
        int lo = 0, hi = candidates.Length;
        while (hi - lo > SortBelow)
        {
            int pivot = Partition(candidates, weights, lo, hi);
            double before = 0;
            for (int i = lo; i < pivot; i++)
            {
                before += weights[candidates[i]];
            }
            if (before >= needed)
            {
                hi = pivot;
                continue;
            }
            double throughPivot = before + weights[candidates[pivot]];
            if (throughPivot >= needed)
            {
                return candidates[..(pivot + 1)];
            }
            needed -= throughPivot;
            lo = pivot + 1;
        }

        Span<int> rest = candidates[lo..hi];
        SortHeaviestFirst(rest, weights);
        double cumulative = 0;
        for (int i = 0; i < rest.Length; i++)
        {
            cumulative += weights[rest[i]];
            if (cumulative >= needed)
            {
                return candidates[..(lo + i + 1)];
            }
        }
        return candidates[..hi];
    }

    private static bool Before(int a, int b, ReadOnlySpan<float> weights) =>
        weights[a] > weights[b] || (weights[a] == weights[b] && a < b);

    /// <summary>Partitions [lo, hi) around a median-of-three pivot; returns the pivot's final index.</summary>
    private static int Partition(Span<int> items, ReadOnlySpan<float> weights, int lo, int hi)
    {
        int mid = lo + (hi - lo) / 2;
        int a = items[lo], b = items[mid], c = items[hi - 1];
        int median = Before(a, b, weights)
            ? (Before(b, c, weights) ? mid : Before(a, c, weights) ? hi - 1 : lo)
            : (Before(a, c, weights) ? lo : Before(b, c, weights) ? hi - 1 : mid);
        (items[median], items[hi - 1]) = (items[hi - 1], items[median]);
        int pivotToken = items[hi - 1];
        int store = lo;
        for (int i = lo; i < hi - 1; i++)
        {
            if (Before(items[i], pivotToken, weights))
            {
                (items[i], items[store]) = (items[store], items[i]);
                store++;
            }
        }
        (items[store], items[hi - 1]) = (items[hi - 1], items[store]);
        return store;
    }

    private static void SortHeaviestFirst(Span<int> items, ReadOnlySpan<float> weights)
    {
        for (int i = 1; i < items.Length; i++)
        {
            int token = items[i];
            int j = i - 1;
            while (j >= 0 && Before(token, items[j], weights))
            {
                items[j + 1] = items[j];
                j--;
            }
            items[j + 1] = token;
        }
    }
}
