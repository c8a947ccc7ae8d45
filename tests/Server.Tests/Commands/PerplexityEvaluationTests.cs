using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Inference.Tests;
using Reference = LlmServer.Tests.PromptLogprobsHttpTests.Reference;

namespace LlmServer.Tests.Commands;

/// <summary>
/// <c>llmserver eval --perplexity</c> run as a process: its likelihoods are the fixtures' reference logprobs, and its
/// sliding windows give what a client gets scoring the same windows with echo and logprobs over HTTP.
/// </summary>
[Collection(ServerCollection.Name)]
public sealed class PerplexityEvaluationTests(ServerFixture server) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(3);
    private const double LogprobTolerance = 2e-3;

    private readonly string _scratch = Directory.CreateTempSubdirectory("perplexity-").FullName;

    public void Dispose() => Directory.Delete(_scratch, recursive: true);

    /// <summary>The prompts scored alone and then followed by their greedy continuations: the difference is the continuations' reference logprobs.</summary>
    [Theory]
    [InlineData("gpt2-random-2l-64d")]
    [InlineData("llama3-random-2l-64d")]
    [InlineData("qwen3-random-2l-64d")]
    public async Task The_likelihood_of_greedy_continuations_is_the_sum_of_their_reference_logprobs(string model)
    {
        Reference[] references = Reference.Load(model);
        JsonElement promptsAlone = await EvaluateAsync(model, references.Select(r => r.PromptIds));
        JsonElement continued = await EvaluateAsync(model, references.Select(r => (int[])[.. r.PromptIds, .. r.GreedyIds]));

        int continuationTokens = references.Sum(r => r.GreedyIds.Length);
        Assert.Equal(references.Sum(r => r.PromptIds.Length - 1), promptsAlone.GetProperty("tokens_scored").GetInt64());
        Assert.Equal(continuationTokens, continued.GetProperty("tokens_scored").GetInt64() - promptsAlone.GetProperty("tokens_scored").GetInt64());
        double continuationNll = continued.GetProperty("total_nll").GetDouble() - promptsAlone.GetProperty("total_nll").GetDouble();
        double referenceNll = -references.Sum(r => r.GreedyLogprobs.Sum());
        Assert.InRange(continuationNll, referenceNll - LogprobTolerance * continuationTokens, referenceNll + LogprobTolerance * continuationTokens);
        double meanNll = continued.GetProperty("mean_nll").GetDouble();
        Assert.Equal(continued.GetProperty("total_nll").GetDouble() / continued.GetProperty("tokens_scored").GetInt64(), meanNll, 1e-9);
        Assert.Equal(Math.Exp(meanNll), continued.GetProperty("perplexity").GetDouble(), 1e-6 * Math.Exp(meanNll));
    }

    /// <summary>A text over twice the context, scored by the command and by hand from windowed echo requests to the server.</summary>
    [Theory]
    [InlineData(40, 15, 19)]
    [InlineData(40, 39, 8)]
    public async Task Sliding_windows_score_each_token_once_as_windowed_echo_requests_do(int context, int stride, int expectedWindows)
    {
        var random = new Random(17);
        int[] ids = Enumerable.Range(0, 300).Select(_ => random.Next(50257)).ToArray();

        JsonElement result = await EvaluateAsync(ServerFixture.ModelName, [ids], "--context", $"{context}", "--stride", $"{stride}");

        Assert.Equal(ids.Length - 1, result.GetProperty("tokens_scored").GetInt64());
        Assert.Equal(expectedWindows, result.GetProperty("windows").GetInt32());
        // By hand: window ends move by the stride; each window counts the tokens past the previous end.
        double byHand = 0;
        int windows = 0;
        for (int scoredFrom = 1, end = Math.Min(context, ids.Length); scoredFrom < ids.Length; scoredFrom = end, end = Math.Min(end + stride, ids.Length))
        {
            int start = Math.Max(0, end - context);
            JsonElement[] logprobs = await EchoedLogprobsAsync(ids[start..end]);
            byHand -= logprobs[(scoredFrom - start)..].Sum(l => l.GetDouble());
            windows++;
        }
        Assert.Equal(expectedWindows, windows);
        Assert.Equal(byHand, result.GetProperty("total_nll").GetDouble(), 1e-4 * ids.Length);
    }

    [Fact]
    public async Task By_default_windows_hold_the_longest_prompt_the_server_accepts_and_move_by_half_of_it()
    {
        JsonElement result = await EvaluateAsync(ServerFixture.ModelName, [Enumerable.Range(100, 200).ToArray()]);

        Assert.Equal(127, result.GetProperty("context").GetInt32());
        Assert.Equal(63, result.GetProperty("stride").GetInt32());
        Assert.Equal(199, result.GetProperty("tokens_scored").GetInt64());
        Assert.Equal(3, result.GetProperty("windows").GetInt32());
    }

    [Fact]
    public async Task A_plain_text_file_is_scored_as_the_completions_endpoint_tokenizes_it()
    {
        string text = "The quick brown fox jumps over the lazy dog. " + string.Concat(Enumerable.Repeat("It was the best of times, it was the worst of times. ", 20));
        string path = Path.Combine(_scratch, "text.txt");
        await File.WriteAllTextAsync(path, text);
        string json = Path.Combine(_scratch, "text.json");

        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout, "eval", "--model", TestFixtures.ModelDirectory(ServerFixture.ModelName), "--perplexity", path, "--json", json);

        Assert.True(exitCode == 0, output);
        Assert.Contains("perplexity", output);
        JsonElement result = JsonDocument.Parse(await File.ReadAllTextAsync(json)).RootElement;
        var (_, tokenized) = await server.PostAsync("/tokenize", new { model = ServerFixture.ModelName, prompt = text });
        int tokens = tokenized.GetProperty("count").GetInt32();
        Assert.Equal(tokens - 1, result.GetProperty("tokens_scored").GetInt64());
        Assert.Equal(result.GetProperty("total_nll").GetDouble() / Math.Log(2) / System.Text.Encoding.UTF8.GetByteCount(text),
            result.GetProperty("bits_per_byte").GetDouble(), 1e-9);
    }

    [Theory]
    [InlineData("missing", new string[0], "--perplexity: no file")]
    [InlineData("", new string[0], "no text")]
    [InlineData("Hello", new string[0], "the text is 1 token(s)")]
    [InlineData("Hello, my name is", new[] { "--stride", "40", "--context", "40" }, "--stride must be between 1 and 39")]
    [InlineData("Hello, my name is", new[] { "--context", "128" }, "--context must be between 2 and 127")]
    [InlineData("Hello, my name is", new[] { "--context", "many" }, "--context")]
    public async Task Bad_input_is_one_error_line_and_exit_code_2(string text, string[] flags, string message)
    {
        string path = Path.Combine(_scratch, "input.txt");
        if (text != "missing")
        {
            await File.WriteAllTextAsync(path, text);
        }

        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout,
            ["eval", "--model", TestFixtures.ModelDirectory(ServerFixture.ModelName), "--perplexity", path, .. flags]);

        Assert.Equal(2, exitCode);
        string line = Assert.Single(output.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("error:", StringComparison.Ordinal));
        Assert.Contains(message, line);
        Assert.DoesNotContain("   at ", output);
    }

    [Fact]
    public async Task A_model_directory_that_is_not_there_is_one_error_line()
    {
        string path = Path.Combine(_scratch, "input.txt");
        await File.WriteAllTextAsync(path, "Hello, my name is");

        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout, "eval", "--model", Path.Combine(_scratch, "no-model"), "--perplexity", path);

        Assert.Equal(2, exitCode);
        Assert.StartsWith("error:", output.Trim());
        Assert.Contains("no-model", output);
        Assert.DoesNotContain("   at ", output);
    }

    [Theory]
    [InlineData("""{"text": "Hello"}""" + "\n" + """{"prose": "no text field"}""", "line 2")]
    [InlineData("""{"tokens": [1, 2, 999999]}""", "999999")]
    public async Task A_bad_jsonl_line_is_named(string jsonl, string message)
    {
        string path = Path.Combine(_scratch, "input.jsonl");
        await File.WriteAllTextAsync(path, jsonl);

        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout, "eval", "--model", TestFixtures.ModelDirectory(ServerFixture.ModelName), "--perplexity", path);

        Assert.Equal(2, exitCode);
        Assert.Contains(message, output);
    }

    [Fact]
    public async Task Eval_help_shows_the_perplexity_mode()
    {
        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout, "eval", "--help");

        Assert.Equal(0, exitCode);
        Assert.Contains("--perplexity FILE", output);
        Assert.Contains("--stride", output);
    }

    private async Task<JsonElement> EvaluateAsync(string model, IEnumerable<int[]> documents, params string[] flags)
    {
        string path = Path.Combine(_scratch, $"{Guid.NewGuid():N}.jsonl");
        await File.WriteAllLinesAsync(path, documents.Select(ids => JsonSerializer.Serialize(new { tokens = ids })));
        string json = Path.ChangeExtension(path, ".json");
        var (exitCode, output) = await LlmServerProcess.RunAsync(Timeout,
            ["eval", "--model", TestFixtures.ModelDirectory(model), "--perplexity", path, "--json", json, .. flags]);
        Assert.True(exitCode == 0, output);
        return JsonDocument.Parse(await File.ReadAllTextAsync(json)).RootElement.Clone();
    }

    /// <summary>Each token's logprob given those before it, the way a client scores a prompt: echo, logprobs, max_tokens 0.</summary>
    private async Task<JsonElement[]> EchoedLogprobsAsync(int[] prompt)
    {
        using HttpResponseMessage response = await server.Http.PostAsJsonAsync("/v1/completions",
            new { model = ServerFixture.ModelName, prompt, echo = true, logprobs = 0, max_tokens = 0 });
        string body = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, body);
        JsonElement[] logprobs = [.. JsonDocument.Parse(body).RootElement.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("token_logprobs").EnumerateArray()];
        Assert.Equal(prompt.Length, logprobs.Length);
        return logprobs;
    }
}
