using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.Inference.Tests;
using Reference = LlmServer.Tests.PromptLogprobsHttpTests.Reference;

namespace LlmServer.Tests;

/// <summary>
/// lm-evaluation-harness's <c>local-completions</c> model replayed: the payloads its <c>_create_payload</c> sends
/// (loglikelihood: echo, logprobs 1, max_tokens 1, temperature 0, seed; generate_until: stop and max_tokens), and
/// its replies read as its <c>parse_logprobs</c> and <c>parse_generations</c> read them.
/// </summary>
[Collection(ServerCollection.Name)]
public class LmEvalHarnessTests(ServerFixture server)
{
    private const double LogprobTolerance = 2e-3;
    /// <summary>lm-eval's default seed, sent with every request.</summary>
    private const int Seed = 1234;

    /// <summary>tokenized_requests=True (the default): a batch of token-id lists, context then continuation.</summary>
    [Theory]
    [InlineData("gpt2-random-2l-64d")]
    [InlineData("llama3-random-2l-64d")]
    [InlineData("qwen3-random-2l-64d")]
    public async Task Loglikelihood_of_a_greedy_continuation_is_the_reference_and_greedy(string model)
    {
        await using RunningServer served = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(model), "--kv-cache-memory", "64MiB"]);
        Reference[] references = Reference.Load(model);
        // One request in the batch is a continuation the model would not choose: the reference's with its first token changed.
        int[] altered = [references[0].GreedyIds[0] == 0 ? 1 : 0, .. references[0].GreedyIds[1..]];
        var requests = references.Select(r => (Context: r.PromptIds, Continuation: r.GreedyIds))
            .Append((Context: references[0].PromptIds, Continuation: altered)).ToArray();

        JsonNode reply = await PostAsync(served.Http, LoglikelihoodPayload(model, new JsonArray([.. requests.Select(r => Ids([.. r.Context, .. r.Continuation]))])));
        (double Logprob, bool IsGreedy)[] answers = ParseLogprobs(reply, [.. requests.Select(r => r.Context.Length)]);

        Assert.Equal(requests.Length, answers.Length);
        for (int i = 0; i < references.Length; i++)
        {
            double expected = references[i].GreedyLogprobs.Sum();
            double tolerance = LogprobTolerance * references[i].GreedyIds.Length;
            Assert.InRange(answers[i].Logprob, expected - tolerance, expected + tolerance);
            Assert.True(answers[i].IsGreedy, $"case {i}: the greedy continuation should read as greedy");
        }
        Assert.False(answers[^1].IsGreedy);
        Assert.True(answers[^1].Logprob < answers[0].Logprob);
    }

    /// <summary>
    /// tokenized_requests=False: lm-eval decodes its token ids and sends text, one string (batch_size 1) or a list of
    /// them, and still slices the reply by its own token count; so the answer equals the token-id request's when the
    /// text round-trips to the same ids.
    /// </summary>
    [Fact]
    public async Task Loglikelihood_sent_as_text_equals_the_same_request_sent_as_token_ids()
    {
        (string Context, string Continuation)[] requests = [("The capital of France is", " Paris"), ("Hello, my name is", " John and I like tea")];
        var tokenized = new List<(int[] Context, int[] Whole)>();
        foreach ((string context, string continuation) in requests)
        {
            int[] contextIds = await TokenizeAsync(context);
            int[] wholeIds = await TokenizeAsync(context + continuation);
            Assert.Equal(contextIds, wholeIds[..contextIds.Length]);
            tokenized.Add((contextIds, wholeIds));
        }
        int[] contextLengths = [.. tokenized.Select(t => t.Context.Length)];

        var byIds = ParseLogprobs(await PostAsync(server.Http, LoglikelihoodPayload(ServerFixture.ModelName, new JsonArray([.. tokenized.Select(t => Ids(t.Whole))]))), contextLengths);
        var byTexts = ParseLogprobs(await PostAsync(server.Http, LoglikelihoodPayload(ServerFixture.ModelName,
            new JsonArray([.. requests.Select(r => JsonValue.Create(r.Context + r.Continuation))]))), contextLengths);
        var byOneText = ParseLogprobs(await PostAsync(server.Http, LoglikelihoodPayload(ServerFixture.ModelName,
            JsonValue.Create(requests[1].Context + requests[1].Continuation))), contextLengths[1..]);

        Assert.Equal(2, byTexts.Length);
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.True(byIds[i].Logprob < 0);
            Assert.Equal(byIds[i].Logprob, byTexts[i].Logprob, 1e-4);
            Assert.Equal(byIds[i].IsGreedy, byTexts[i].IsGreedy);
        }
        Assert.Equal(byIds[1].Logprob, Assert.Single(byOneText).Logprob, 1e-4);
    }

    /// <summary>generate_until: its "until" strings and the end-of-text string as stop, read back by choice index.</summary>
    [Fact]
    public async Task Generate_until_stops_at_the_first_until_string()
    {
        Reference[] references = Reference.Load(ServerFixture.ModelName);
        Reference reference = references[0];
        string until = reference.GreedyText[reference.GreedyText.IndexOf(' ', 2)..][..3];
        var payload = new JsonObject
        {
            ["prompt"] = new JsonArray(JsonValue.Create(reference.Prompt), JsonValue.Create(references[1].Prompt)),
            ["model"] = ServerFixture.ModelName,
            ["max_tokens"] = reference.GreedyIds.Length,
            ["temperature"] = 0,
            ["stop"] = new JsonArray(JsonValue.Create(until), JsonValue.Create("<|endoftext|>")),
            ["seed"] = Seed,
        };

        JsonNode reply = await PostAsync(server.Http, payload);

        string?[] generations = new string?[2];
        foreach (JsonNode? choice in reply["choices"]!.AsArray())
        {
            generations[(int)choice!["index"]!] = (string?)choice["text"];
        }
        Assert.Equal(reference.GreedyText[..reference.GreedyText.IndexOf(until, StringComparison.Ordinal)], generations[0]);
        Assert.StartsWith(generations[1]!, references[1].GreedyText, StringComparison.Ordinal);
    }

    /// <summary>
    /// lm-eval's default tokenizer backend ("auto") probes GET /tokenizer_info for an eos_token and POST /tokenize for a
    /// token list, then uses the server as its tokenizer: special tokens' ids by encoding their text, text by /detokenize.
    /// </summary>
    [Theory]
    [InlineData("gpt2-random-2l-64d", 50256, null)]
    [InlineData("llama3-random-2l-64d", 128009, 128000)]
    public async Task The_remote_tokenizer_probe_finds_the_special_tokens(string model, int eosId, int? bosId)
    {
        await using RunningServer served = await RunningServer.StartAsync(["--model", TestFixtures.ModelDirectory(model), "--kv-cache-memory", "64MiB"]);

        using HttpResponseMessage infoResponse = await served.Http.GetAsync("/tokenizer_info");
        Assert.True(infoResponse.IsSuccessStatusCode);
        JsonNode info = JsonNode.Parse(await infoResponse.Content.ReadAsStringAsync())!;
        Assert.Equal(eosId, Assert.Single(await RemoteEncodeAsync(served.Http, (string)info["eos_token"]!)));
        Assert.Equal(bosId, info["bos_token"] is { } bos ? Assert.Single(await RemoteEncodeAsync(served.Http, (string)bos!)) : null);
        Assert.NotEmpty(await RemoteEncodeAsync(served.Http, "test"));
        int[] ids = await RemoteEncodeAsync(served.Http, "Hello, my name is");
        using HttpResponseMessage decoded = await served.Http.PostAsJsonAsync("/detokenize", new { tokens = ids });
        Assert.Equal("Hello, my name is", (string?)JsonNode.Parse(await decoded.Content.ReadAsStringAsync())!["prompt"]);
    }

    /// <summary>RemoteTokenizer.encode: no model, no special tokens added.</summary>
    private static async Task<int[]> RemoteEncodeAsync(HttpClient http, string text)
    {
        using HttpResponseMessage response = await http.PostAsJsonAsync("/tokenize", new { prompt = text, add_special_tokens = false });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return [.. JsonNode.Parse(body)!["tokens"]!.AsArray().Select(t => (int)t!)];
    }

    private static JsonObject LoglikelihoodPayload(string model, JsonNode prompt) => new()
    {
        ["model"] = model,
        ["prompt"] = prompt,
        ["temperature"] = 0,
        ["max_tokens"] = 1,
        ["logprobs"] = 1,
        ["seed"] = Seed,
        ["echo"] = true,
    };

    /// <summary>
    /// lm-eval's parse_logprobs: per choice (by index) with its context length, the sum of token_logprobs[ctxlen:-1]
    /// (the last is the sampled token), greedy when each of those equals the largest value in its top_logprobs.
    /// </summary>
    private static (double Logprob, bool IsGreedy)[] ParseLogprobs(JsonNode reply, int[] contextLengths) =>
        reply["choices"]!.AsArray().OrderBy(c => (int)c!["index"]!).Zip(contextLengths, (choice, contextLength) =>
        {
            Assert.True(contextLength > 0);
            JsonArray tokenLogprobs = choice!["logprobs"]!["token_logprobs"]!.AsArray();
            JsonArray topLogprobs = choice["logprobs"]!["top_logprobs"]!.AsArray();
            double[] continuation = [.. tokenLogprobs.Take(tokenLogprobs.Count - 1).Skip(contextLength).Select(l => (double)l!)];
            JsonObject[] tops = [.. topLogprobs.Take(topLogprobs.Count - 1).Skip(contextLength).Select(t => t!.AsObject())];
            bool isGreedy = continuation.Zip(tops).All(pair => pair.First == pair.Second.Max(entry => (double)entry.Value!));
            return (continuation.Sum(), isGreedy);
        }).ToArray();

    private static JsonArray Ids(int[] ids) => new([.. ids.Select(id => JsonValue.Create(id))]);

    private async Task<int[]> TokenizeAsync(string text)
    {
        var (_, body) = await server.PostAsync("/tokenize", new { model = ServerFixture.ModelName, prompt = text });
        return [.. body.GetProperty("tokens").EnumerateArray().Select(t => t.GetInt32())];
    }

    private static async Task<JsonNode> PostAsync(HttpClient http, JsonObject payload)
    {
        using HttpResponseMessage response = await http.PostAsJsonAsync("/v1/completions", payload);
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        return JsonNode.Parse(body)!;
    }
}
