using System.Text;

namespace LlmServer.Bench.LoadTest;

/// <summary>
/// vLLM's "random" dataset without a tokenizer. Completions prompts are random token ids, which the
/// completions API accepts in place of text, so their length is exact whatever the model's vocabulary.
/// Chat messages and prompts behind a shared prefix have to be text: they are random common English
/// words, each one token for GPT-2-style BPE tokenizers, so their length is close to but not exactly
/// the requested one.
/// </summary>
internal static class RandomPromptGenerator
{
    // Below 1000 GPT-2 keeps bytes and short fragments; 49000 stays inside every GPT-2-sized vocabulary (50257).
    internal const int LowestTokenId = 1000;
    internal const int HighestTokenIdExclusive = 49000;

    private static readonly string[] Words =
    [
        "time", "people", "year", "way", "day", "man", "thing", "woman", "life", "child",
        "world", "school", "state", "family", "student", "group", "country", "problem", "hand", "part",
        "place", "case", "week", "company", "system", "program", "question", "work", "government", "number",
        "night", "point", "home", "water", "room", "mother", "area", "money", "story", "fact",
        "month", "lot", "right", "study", "book", "eye", "job", "word", "business", "issue",
        "side", "kind", "head", "house", "service", "friend", "father", "power", "hour", "game",
        "line", "end", "member", "law", "car", "city", "community", "name", "president", "team",
        "minute", "idea", "kid", "body", "information", "back", "parent", "face", "others", "level",
        "office", "door", "health", "person", "art", "war", "history", "party", "result", "change",
        "morning", "reason", "research", "girl", "guy", "moment", "air", "teacher", "force", "education",
        "good", "new", "first", "last", "long", "great", "little", "own", "other", "old",
        "big", "high", "different", "small", "large", "next", "early", "young", "important", "few",
        "public", "bad", "same", "able", "open", "green", "red", "blue", "light", "river",
    ];

    public static BenchmarkPrompt[] Generate(ServingBenchmarkOptions options)
    {
        var random = new Random(options.Seed);
        var prompts = new BenchmarkPrompt[options.NumPrompts];
        bool asText = options.IsChat || options.SharedPrefix is not null;
        for (int i = 0; i < prompts.Length; i++)
        {
            prompts[i] = asText
                ? new BenchmarkPrompt(null, TextPrompt(random, options.SharedPrefix, options.InputLength), options.InputLength)
                : new BenchmarkPrompt(TokenIds(random, options.InputLength), null, options.InputLength);
        }
        return prompts;
    }

    private static int[] TokenIds(Random random, int count)
    {
        var ids = new int[count];
        for (int i = 0; i < ids.Length; i++)
        {
            ids[i] = random.Next(LowestTokenId, HighestTokenIdExclusive);
        }
        return ids;
    }

    private static string TextPrompt(Random random, string? sharedPrefix, int wordCount)
    {
        var text = new StringBuilder(sharedPrefix);
        for (int i = 0; i < wordCount; i++)
        {
            if (text.Length > 0)
            {
                text.Append(' ');
            }
            text.Append(Words[random.Next(Words.Length)]);
        }
        return text.ToString();
    }
}
