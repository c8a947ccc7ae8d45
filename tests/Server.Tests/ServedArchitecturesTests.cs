using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>
/// Llama 3 and Qwen3 checkpoints served over the API as a client sees them: the fixtures' reference
/// cases (an independent numpy forward pass, prompts rendered by Hugging Face's template code) come
/// back through /v1/completions, /v1/chat/completions and /tokenize with the same prompt tokens and
/// the same greedy logprobs.
/// </summary>
public class ServedArchitecturesTests
{
    private const double LogprobTolerance = 2e-3;

    [Theory]
    [InlineData("llama3-random-2l-64d")]
    [InlineData("qwen3-random-2l-64d")]
    public async Task Every_reference_case_comes_back_through_the_api(string model)
    {
        await using RunningServer server = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(model), "--kv-cache-memory", "64MiB"]);
        using JsonDocument reference = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestFixtures.ModelDirectory(model), "reference.json")));

        foreach (JsonElement referenceCase in reference.RootElement.GetProperty("cases").EnumerateArray())
        {
            int[] promptIds = referenceCase.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            double[] logprobs = referenceCase.GetProperty("greedy").EnumerateArray().Select(s => s.GetProperty("logprob").GetDouble()).ToArray();
            bool isChat = referenceCase.TryGetProperty("messages", out JsonElement messages);
            JsonNode request = isChat
                ? new JsonObject { ["messages"] = JsonNode.Parse(messages.GetRawText()), ["logprobs"] = true, ["top_logprobs"] = 5 }
                : new JsonObject { ["prompt"] = referenceCase.GetProperty("prompt").GetString(), ["logprobs"] = 5 };
            request["model"] = model;
            request["max_tokens"] = logprobs.Length;
            request["temperature"] = 0;

            JsonObject tokenized = await PostAsync(server, "/tokenize", isChat
                ? new JsonObject { ["model"] = model, ["messages"] = JsonNode.Parse(messages.GetRawText()) }
                : new JsonObject { ["model"] = model, ["prompt"] = referenceCase.GetProperty("prompt").GetString() });
            Assert.Equal(promptIds, tokenized["tokens"]!.AsArray().Select(t => (int)t!));

            JsonObject response = await PostAsync(server, isChat ? "/v1/chat/completions" : "/v1/completions", request);
            Assert.Equal(promptIds.Length, (int)response["usage"]!["prompt_tokens"]!);
            Assert.Equal(logprobs.Length, (int)response["usage"]!["completion_tokens"]!);
            JsonNode choice = response["choices"]![0]!;
            double[] served = isChat
                ? choice["logprobs"]!["content"]!.AsArray().Select(t => (double)t!["logprob"]!).ToArray()
                : choice["logprobs"]!["token_logprobs"]!.AsArray().Select(t => (double)t!).ToArray();
            Assert.Equal(logprobs.Length, served.Length);
            for (int step = 0; step < served.Length; step++)
            {
                Assert.InRange(served[step], logprobs[step] - LogprobTolerance, logprobs[step] + LogprobTolerance);
            }
        }
    }

    private static async Task<JsonObject> PostAsync(RunningServer server, string path, JsonNode body)
    {
        using HttpResponseMessage response = await server.Http.PostAsJsonAsync(path, body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{path}: {(int)response.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }
}
