using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>
/// Scoring prompts over /v1/completions, as lm-eval-harness's loglikelihood tasks do: echo with logprobs and
/// max_tokens 0 (the legacy shape), vLLM's prompt_logprobs, the echoed prompt first when streamed, and best_of.
/// </summary>
[Collection(ServerCollection.Name)]
public class PromptLogprobsHttpTests(ServerFixture server)
{
    private const double LogprobTolerance = 2e-3;

    /// <summary>The prompt is a reference prompt followed by its greedy continuation: each continuation token's logprob is the reference's.</summary>
    [Theory]
    [InlineData("gpt2-random-2l-64d")]
    [InlineData("llama3-random-2l-64d")]
    [InlineData("qwen3-random-2l-64d")]
    public async Task Echoed_prompt_logprobs_match_the_reference_at_every_greedy_position(string model)
    {
        await using RunningServer served = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(model), "--kv-cache-memory", "64MiB"]);
        foreach (Reference reference in Reference.Load(model))
        {
            int[] prompt = [.. reference.PromptIds, .. reference.GreedyIds];
            JsonElement body = await PostOkAsync(served.Http, new { model, prompt, echo = true, logprobs = 5, max_tokens = 0, prompt_logprobs = 5 });

            JsonElement choice = body.GetProperty("choices")[0];
            JsonElement legacy = choice.GetProperty("logprobs");
            JsonElement[] tokenLogprobs = [.. legacy.GetProperty("token_logprobs").EnumerateArray()];
            JsonElement[] top = [.. legacy.GetProperty("top_logprobs").EnumerateArray()];
            Assert.Equal(prompt.Length, tokenLogprobs.Length);
            Assert.Equal(prompt.Length, legacy.GetProperty("tokens").GetArrayLength());
            Assert.Equal(JsonValueKind.Null, tokenLogprobs[0].ValueKind);
            Assert.Equal(JsonValueKind.Null, top[0].ValueKind);
            JsonElement[] vllm = [.. choice.GetProperty("prompt_logprobs").EnumerateArray()];
            Assert.Equal(JsonValueKind.Null, vllm[0].ValueKind);
            for (int step = 0; step < reference.GreedyIds.Length; step++)
            {
                int at = reference.PromptIds.Length + step;
                Assert.InRange(tokenLogprobs[at].GetDouble(), reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
                JsonElement entry = vllm[at].GetProperty(reference.GreedyIds[step].ToString());
                Assert.InRange(entry.GetProperty("logprob").GetDouble(), reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
                Assert.Equal(1, entry.GetProperty("rank").GetInt32());
            }
            // Offsets index the echoed text, which is the whole text: nothing was generated.
            string text = choice.GetProperty("text").GetString()!;
            int[] offsets = [.. legacy.GetProperty("text_offset").EnumerateArray().Select(o => o.GetInt32())];
            Assert.Equal(0, offsets[0]);
            Assert.True(offsets.SequenceEqual(offsets.Order()) && offsets[^1] < text.Length);
            Assert.Equal(prompt.Length, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());
            Assert.Equal(0, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        }
    }

    [Fact]
    public async Task Echo_with_logprobs_and_a_completion_lists_the_prompt_tokens_then_the_generated_ones()
    {
        Reference reference = Reference.Load(ServerFixture.ModelName)[0];
        JsonElement body = await PostOkAsync(server.Http,
            new { model = ServerFixture.ModelName, prompt = reference.PromptIds, echo = true, logprobs = 2, max_tokens = 4, temperature = 0 });

        JsonElement choice = body.GetProperty("choices")[0];
        JsonElement[] tokenLogprobs = [.. choice.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray()];
        Assert.Equal(reference.PromptIds.Length + 4, tokenLogprobs.Length);
        Assert.Equal(JsonValueKind.Null, tokenLogprobs[0].ValueKind);
        for (int step = 0; step < 4; step++)
        {
            Assert.InRange(tokenLogprobs[reference.PromptIds.Length + step].GetDouble(),
                reference.GreedyLogprobs[step] - LogprobTolerance, reference.GreedyLogprobs[step] + LogprobTolerance);
        }
        string text = choice.GetProperty("text").GetString()!;
        int firstGenerated = choice.GetProperty("logprobs").GetProperty("text_offset")[reference.PromptIds.Length].GetInt32();
        Assert.Equal(reference.Prompt, text[..firstGenerated]);
        Assert.Equal(4, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_streamed_echo_with_logprobs_sends_the_prompt_and_its_logprobs_in_the_first_chunk()
    {
        Reference reference = Reference.Load(ServerFixture.ModelName)[1];
        JsonElement[] chunks = await StreamAsync(new { model = ServerFixture.ModelName, prompt = reference.Prompt, echo = true, logprobs = 1, max_tokens = 3, temperature = 0, stream = true });

        JsonElement first = chunks[0].GetProperty("choices")[0];
        Assert.Equal(reference.Prompt, first.GetProperty("text").GetString());
        JsonElement[] promptLogprobs = [.. first.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray()];
        Assert.Equal(reference.PromptIds.Length, promptLogprobs.Length);
        Assert.Equal(JsonValueKind.Null, promptLogprobs[0].ValueKind);
        Assert.All(promptLogprobs[1..], p => Assert.True(p.GetDouble() <= 0));
        string generated = string.Concat(chunks[1..].Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString()));
        Assert.NotEmpty(generated);
        Assert.StartsWith(generated, reference.GreedyText, StringComparison.Ordinal);
        Assert.Equal(3, chunks[1..].Sum(c => c.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("tokens").GetArrayLength()));
    }

    /// <summary>best_of candidates run with seeds seed+i, as n's choices do; so n = best_of shows every candidate and its likelihood.</summary>
    [Fact]
    public async Task Best_of_returns_the_n_candidates_with_the_highest_cumulative_logprob()
    {
        var common = new { model = ServerFixture.ModelName, prompt = "Hello, my name is", max_tokens = 6, temperature = 1.0, seed = 11, logprobs = 0, ignore_eos = true };
        JsonElement all = await PostOkAsync(server.Http, new { common.model, common.prompt, common.max_tokens, common.temperature, common.seed, common.logprobs, common.ignore_eos, n = 5 });
        JsonElement best = await PostOkAsync(server.Http, new { common.model, common.prompt, common.max_tokens, common.temperature, common.seed, common.logprobs, common.ignore_eos, n = 2, best_of = 5 });

        var candidates = all.GetProperty("choices").EnumerateArray()
            .Select(c => (Text: c.GetProperty("text").GetString()!, Score: c.GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray().Sum(l => l.GetDouble())))
            .OrderByDescending(c => c.Score).ToArray();
        Assert.True(candidates.Select(c => c.Text).Distinct().Count() > 2, "the seeds should give different candidates");
        JsonElement[] chosen = [.. best.GetProperty("choices").EnumerateArray()];
        Assert.Equal(2, chosen.Length);
        Assert.Equal(candidates.Take(2).Select(c => c.Text), chosen.Select(c => c.GetProperty("text").GetString()));
        Assert.Equal([0, 1], chosen.Select(c => c.GetProperty("index").GetInt32()));
        // Every candidate's tokens are paid for, returned or not.
        Assert.Equal(5 * 6, best.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    /// <summary>Chat's prompt is the rendered template: its prompt_logprobs are those of the same tokens sent to /v1/completions.</summary>
    [Fact]
    public async Task Chat_returns_the_rendered_prompts_logprobs_at_the_top_level()
    {
        var messages = new[] { new { role = "user", content = "Say hello" } };
        var (_, tokenized) = await server.PostAsync("/tokenize", new { model = ServerFixture.ModelName, messages });
        int[] promptIds = [.. tokenized.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32())];
        using HttpResponseMessage chatResponse = await server.Http.PostAsJsonAsync("/v1/chat/completions",
            new { model = ServerFixture.ModelName, messages, max_tokens = 1, prompt_logprobs = 2 });
        JsonElement chat = JsonDocument.Parse(await chatResponse.Content.ReadAsStringAsync()).RootElement.Clone();
        JsonElement completion = await PostOkAsync(server.Http, new { model = ServerFixture.ModelName, prompt = promptIds, max_tokens = 1, prompt_logprobs = 2 });

        JsonElement[] fromChat = [.. chat.GetProperty("prompt_logprobs").EnumerateArray()];
        JsonElement[] fromCompletion = [.. completion.GetProperty("choices")[0].GetProperty("prompt_logprobs").EnumerateArray()];
        Assert.Equal(promptIds.Length, fromChat.Length);
        Assert.Equal(JsonValueKind.Null, fromChat[0].ValueKind);
        for (int i = 1; i < promptIds.Length; i++)
        {
            JsonElement own = fromChat[i].GetProperty(promptIds[i].ToString());
            Assert.Equal(fromCompletion[i].GetProperty(promptIds[i].ToString()).GetProperty("logprob").GetDouble(), own.GetProperty("logprob").GetDouble(), 1e-6);
            Assert.True(own.GetProperty("rank").GetInt32() >= 1);
            Assert.InRange(fromChat[i].EnumerateObject().Count(), 2, 3);
        }
        Assert.False(chat.GetProperty("choices")[0].TryGetProperty("prompt_logprobs", out _));
    }

    [Fact]
    public async Task Chat_refuses_prompt_logprobs_when_streamed()
    {
        var (status, body) = await server.PostAsync("/v1/chat/completions",
            new { model = ServerFixture.ModelName, messages = new[] { new { role = "user", content = "Hi" } }, prompt_logprobs = 1, stream = true });

        Assert.Equal(400, status);
        Assert.Equal("prompt_logprobs", body.GetProperty("error").GetProperty("param").GetString());
    }

    [Theory]
    [InlineData("""{"prompt": "Hi", "max_tokens": 0}""", "max_tokens")]
    [InlineData("""{"prompt": "Hi", "n": 3, "best_of": 2}""", "best_of")]
    [InlineData("""{"prompt": "Hi", "best_of": 2, "stream": true}""", "best_of")]
    [InlineData("""{"prompt": "Hi", "prompt_logprobs": 21}""", "prompt_logprobs")]
    public async Task Impossible_combinations_are_refused_naming_the_parameter(string json, string param)
    {
        var (status, body) = await server.PostRawAsync("/v1/completions", json.Replace("{", $$"""{"model": "{{ServerFixture.ModelName}}", """));

        Assert.Equal(400, status);
        Assert.Equal(param, body.GetProperty("error").GetProperty("param").GetString());
    }

    private async Task<JsonElement[]> StreamAsync(object request)
    {
        using var message = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(JsonSerializer.Serialize(request), Encoding.UTF8, "application/json") };
        using HttpResponseMessage response = await server.Http.SendAsync(message);
        string[] events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", events[^1]);
        return events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement.Clone()).ToArray();
    }

    private static async Task<JsonElement> PostOkAsync(HttpClient http, object request)
    {
        using HttpResponseMessage response = await http.PostAsJsonAsync("/v1/completions", request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    internal sealed record Reference(string Prompt, int[] PromptIds, int[] GreedyIds, string GreedyText, double[] GreedyLogprobs)
    {
        /// <summary>The cases of <paramref name="model"/>'s reference.json (fixtures/models): a prompt, its greedy continuation and their logprobs.</summary>
        public static Reference[] Load(string model)
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestFixtures.ModelDirectory(model), "reference.json")));
            return document.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Reference(
                c.TryGetProperty("prompt", out JsonElement prompt) ? prompt.GetString()! : c.GetProperty("rendered").GetString()!,
                c.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                c.GetProperty("greedy_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                c.GetProperty("greedy_text").GetString()!,
                c.GetProperty("greedy").EnumerateArray().Select(s => s.GetProperty("logprob").GetDouble()).ToArray())).ToArray();
        }
    }
}
