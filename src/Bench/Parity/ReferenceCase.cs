using System.Text.Json;

namespace LlmServer.Bench.Parity;

/// <summary>
/// One case of a fixture model's reference.json (../shared/fixtures/README.md): the prompt's token ids, and
/// the greedy continuation an independent implementation computed, with each token's logprob and top 5.
/// </summary>
public sealed record ReferenceCase(int[] PromptIds, int[] GreedyIds, string GreedyText, double[] GreedyLogprobs, int[][] GreedyTop5Ids)
{
    public static IReadOnlyList<ReferenceCase> Load(string referenceJson)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(referenceJson));
        return document.RootElement.GetProperty("cases").EnumerateArray().Select(c =>
        {
            JsonElement[] greedy = c.GetProperty("greedy").EnumerateArray().ToArray();
            return new ReferenceCase(
                c.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                c.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                c.GetProperty("greedy_text").GetString()!,
                greedy.Select(s => s.GetProperty("logprob").GetDouble()).ToArray(),
                greedy.Select(s => s.GetProperty("top5").EnumerateArray().Select(p => p[0].GetInt32()).ToArray()).ToArray());
        }).ToList();
    }
}
