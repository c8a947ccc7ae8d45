using System.Text.Json;

namespace LlmServer.Inference.Tests.Models;

/// <summary>
/// One case of a fixture model's reference.json, computed by an independent numpy forward pass of its
/// architecture. Plain cases have a prompt; chat cases have messages and give the rendered template as the prompt.
/// </summary>
public sealed record ReferenceCase(
    string Model,
    string Prompt,
    int[] PromptIds,
    int[] GreedyIds,
    string GreedyText,
    double[] GreedyLogprobs,
    int[][] GreedyTop5Ids,
    double[] LastLogitsFirst8,
    int LastLogitsArgmax)
{
    public override string ToString() => $"{Model}: {Prompt}";

    public static readonly string[] FixtureModels = ["gpt2-random-2l-64d", "tiny-gpt2", "llama3-random-2l-64d", "qwen3-random-2l-64d"];

    public static IReadOnlyList<ReferenceCase> Load(string model)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestFixtures.ModelDirectory(model), "reference.json")));
        return document.RootElement.GetProperty("cases").EnumerateArray().Select(c => new ReferenceCase(
            model,
            c.TryGetProperty("prompt", out JsonElement prompt) ? prompt.GetString()! : c.GetProperty("rendered").GetString()!,
            c.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.GetProperty("greedy_text").GetString()!,
            c.GetProperty("greedy").EnumerateArray().Select(s => s.GetProperty("logprob").GetDouble()).ToArray(),
            c.GetProperty("greedy").EnumerateArray().Select(s => s.GetProperty("top5").EnumerateArray().Select(p => p[0].GetInt32()).ToArray()).ToArray(),
            c.GetProperty("last_logits_first8").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
            c.GetProperty("last_logits_argmax").GetInt32())).ToList();
    }

    /// <summary>xunit member data: every fixture model.</summary>
    public static TheoryData<string> Models() => new(FixtureModels);

    /// <summary>xunit member data: (model, case index) for every case of every fixture model.</summary>
    public static TheoryData<string, int> All()
    {
        var data = new TheoryData<string, int>();
        foreach (string model in FixtureModels)
        {
            for (int i = 0; i < Load(model).Count; i++)
            {
                data.Add(model, i);
            }
        }
        return data;
    }
}
