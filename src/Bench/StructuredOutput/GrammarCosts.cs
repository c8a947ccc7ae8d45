using System.Diagnostics;
using System.Text;
using LlmServer.Bench.LoadTest;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;

namespace LlmServer.Bench.StructuredOutput;

/// <summary>
/// What constrained decoding costs in-process, apart from the model: compiling a schema (cold, and found in the
/// cache), building the token trie of a vocabulary, and the mask of one constrained row per generated token,
/// computed exactly as the engine computes it (<see cref="ConstrainedOutput"/>) while a tokenized document is fed
/// through it token by token.
/// </summary>
public static class GrammarCosts
{
    /// <param name="MedianCompileMicroseconds">One cold <see cref="JsonGrammar.FromSchema"/>.</param>
    /// <param name="MedianCachedLookupMicroseconds">One <see cref="JsonGrammarCache.GetOrCompile(System.Text.Json.JsonElement, bool)"/> that finds it
    /// (the schema's canonical text is still built: that is the key).</param>
    public sealed record CompileCost(string Schema, int Compiles, double MedianCompileMicroseconds, double MedianCachedLookupMicroseconds);

    public sealed record TrieCost(int VocabSize, int NodeCount, int Builds, double MedianBuildMs);

    /// <param name="Tokens">The document's tokens and its end of sequence, one mask each per pass.</param>
    /// <param name="InStringValue">Masks computed inside a string value, in microseconds.</param>
    /// <param name="Structural">Every other mask (keys, punctuation, numbers, literals, enum values' quotes).</param>
    public sealed record MaskCost(string Schema, int Tokens, int Passes, LatencySummary InStringValue, LatencySummary Structural);

    /// <summary>The schema's cold compile, <paramref name="compiles"/> times, and as many lookups in a warm cache.</summary>
    public static CompileCost MeasureCompile(BenchmarkSchemas.Case schema, int compiles = 300)
    {
        var element = schema.SchemaElement;
        JsonGrammar.FromSchema(element); // JIT and first-use costs are not what a server pays per schema
        var coldTimes = new double[compiles];
        for (int i = 0; i < compiles; i++)
        {
            long start = Stopwatch.GetTimestamp();
            JsonGrammar.FromSchema(element);
            coldTimes[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        var cache = new JsonGrammarCache();
        cache.GetOrCompile(element);
        var lookupTimes = new double[compiles];
        for (int i = 0; i < compiles; i++)
        {
            long start = Stopwatch.GetTimestamp();
            cache.GetOrCompile(element);
            lookupTimes[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        return new CompileCost(schema.Name, compiles, LatencyStatistics.Percentile(coldTimes, 50), LatencyStatistics.Percentile(lookupTimes, 50));
    }

    /// <summary>Builds <paramref name="tokenizer"/>'s trie <paramref name="builds"/> times; returns the last one with the median time.</summary>
    public static (TokenTrie Trie, TrieCost Cost) MeasureTrie(ITokenizer tokenizer, int builds = 3)
    {
        TokenTrie trie = null!;
        var times = new double[builds];
        for (int i = 0; i < builds; i++)
        {
            long start = Stopwatch.GetTimestamp();
            trie = new TokenTrie(tokenizer);
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        return (trie, new TrieCost(trie.VocabSize, trie.NodeCount, builds, LatencyStatistics.Percentile(times, 50)));
    }

    /// <summary>
    /// Feeds each schema's document, tokenized by <paramref name="tokenizer"/>, through a constrained row
    /// <paramref name="passes"/> times (after one untimed pass), timing the mask before each token. The row has
    /// <paramref name="maxTokens"/> to spend, as a request's max_tokens, so the mask keeps the document closable as
    /// the engine's does. One result per schema, then one named "all" over every schema's masks.
    /// </summary>
    /// <exception cref="InvalidOperationException">The mask refused one of a document's tokens.</exception>
    public static IReadOnlyList<MaskCost> MeasureMasks(IReadOnlyList<BenchmarkSchemas.Case> schemas, ITokenizer tokenizer, TokenTrie trie,
        int passes = 10, int maxTokens = 512)
    {
        var results = new List<MaskCost>();
        var allInString = new List<double>();
        var allStructural = new List<double>();
        foreach (BenchmarkSchemas.Case schema in schemas)
        {
            var inString = new List<double>();
            var structural = new List<double>();
            int tokens = FeedDocument(schema, tokenizer, trie, passes, maxTokens, inString, structural);
            results.Add(new MaskCost(schema.Name, tokens, passes, LatencyStatistics.Summarize(inString), LatencyStatistics.Summarize(structural)));
            allInString.AddRange(inString);
            allStructural.AddRange(structural);
        }

        results.Add(new MaskCost("all", results.Sum(r => r.Tokens), passes, LatencyStatistics.Summarize(allInString), LatencyStatistics.Summarize(allStructural)));
        return results;
    }

    /// <returns>How many masks one pass takes: the document's tokens and its end of sequence.</returns>
    private static int FeedDocument(BenchmarkSchemas.Case schema, ITokenizer tokenizer, TokenTrie trie, int passes, int maxTokens,
        List<double> stringTimes, List<double> structuralTimes)
    {
        byte[] document = Encoding.UTF8.GetBytes(schema.Document);
        // The reply's last step is its end of sequence, which the mask must allow once the document is whole.
        List<int> tokens = [.. tokenizer.Encode(schema.Document), tokenizer.EndOfSequenceIds[0]];
        bool[] inStringValue = StringValuePositions.Find(document);
        var tokenInString = new bool[tokens.Count];
        int offset = 0;
        for (int i = 0; i < tokens.Count - 1; i++)
        {
            tokenInString[i] = inStringValue[offset];
            offset += tokenizer.TokenBytes(tokens[i]).Length;
        }

        var grammar = JsonGrammar.FromSchema(schema.SchemaElement);
        for (int pass = -1; pass < passes; pass++)
        {
            var row = new ConstrainedOutput(new GrammarConstraint(grammar), trie, tokenizer);
            for (int i = 0; i < tokens.Count; i++)
            {
                long start = Stopwatch.GetTimestamp();
                ReadOnlySpan<ulong> mask = row.AllowedTokens(maxTokens - i);
                double microseconds = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
                if (!TokenTrie.IsAllowed(mask, tokens[i]))
                {
                    throw new InvalidOperationException(
                        $"the {schema.Name} document's token {i} ('{tokenizer.TokenText(tokens[i])}') is outside the mask: the document does not follow its schema");
                }

                row.Accept(tokens[i]);
                if (pass >= 0)
                {
                    (tokenInString[i] ? stringTimes : structuralTimes).Add(microseconds);
                }
            }
        }

        return tokens.Count;
    }
}
