using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>
/// generation_config.json's sampling defaults through the real server (vLLM's <c>--generation-config auto</c>):
/// a copy of the GPT-2 fixture whose file recommends greedy decoding (temperature 0) and 5 new tokens.
/// A request that gives no temperature is then greedy, one that gives its own samples; under
/// <c>--generation-config vllm</c> the file is ignored.
/// </summary>
public sealed class GenerationConfigDefaultsTests : IDisposable
{
    private const int FileMaxNewTokens = 5;
    private readonly string _model = Path.Combine(Path.GetTempPath(), "generation-config-" + Guid.NewGuid().ToString("N"));

    public GenerationConfigDefaultsTests()
    {
        Directory.CreateDirectory(_model);
        foreach (string file in Directory.GetFiles(TestFixtures.ModelDirectory(ServerFixture.ModelName)))
        {
            File.Copy(file, Path.Combine(_model, Path.GetFileName(file)));
        }
        File.WriteAllText(Path.Combine(_model, "generation_config.json"),
            $$"""{"bos_token_id": 50256, "eos_token_id": 50256, "do_sample": true, "temperature": 0.0, "max_new_tokens": {{FileMaxNewTokens}}}""");
    }

    public void Dispose() => Directory.Delete(_model, recursive: true);

    private Task<RunningServer> StartAsync(params string[] flags) =>
        RunningServer.StartAsync(["--model", _model, "--kv-cache-memory", "64MiB", .. flags]);

    private static async Task<JsonElement> PostAsync(RunningServer server, string path, object body)
    {
        using HttpResponseMessage response = await server.Http.PostAsJsonAsync(path, body);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    private static object[] Messages => [new { role = "user", content = "Tell me a story." }];

    private static string[] ChatTexts(JsonElement response) =>
        response.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("message").GetProperty("content").GetString()!).ToArray();

    private static string[] CompletionTexts(JsonElement response) =>
        response.GetProperty("choices").EnumerateArray().Select(c => c.GetProperty("text").GetString()!).ToArray();

    private static int CompletionTokens(JsonElement response) => response.GetProperty("usage").GetProperty("completion_tokens").GetInt32();

    /// <summary>The defaults /v1/models shows for the served model, as "temperature top_p top_k max_tokens" (max_tokens "-" when absent).</summary>
    private static async Task<string> ShownDefaultsAsync(RunningServer server)
    {
        JsonElement card = JsonDocument.Parse(await server.Http.GetStringAsync("/v1/models")).RootElement.GetProperty("data")[0];
        JsonElement shown = card.GetProperty("default_sampling_params");
        string maxTokens = shown.TryGetProperty("max_tokens", out JsonElement max) ? max.GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture) : "-";
        return $"{shown.GetProperty("temperature").GetDouble()} {shown.GetProperty("top_p").GetDouble()} {shown.GetProperty("top_k").GetInt32()} {maxTokens}";
    }

    [Fact]
    public async Task Unset_parameters_take_the_files_values_and_a_requests_own_values_win()
    {
        await using RunningServer server = await StartAsync();
        // What a client (the playground) shows as "the model's default": the file's values, neutral where it sets none.
        Assert.Equal($"0 1 0 {FileMaxNewTokens}", await ShownDefaultsAsync(server));

        // No temperature, no max tokens: the file's temperature 0 makes all three choices the greedy reply,
        // and its max_new_tokens is the chat reply's length.
        JsonElement defaulted = await PostAsync(server, "/v1/chat/completions", new { messages = Messages, n = 3, ignore_eos = true });
        string[] texts = ChatTexts(defaulted);
        Assert.Equal(3 * FileMaxNewTokens, CompletionTokens(defaulted));
        Assert.All(defaulted.GetProperty("choices").EnumerateArray(), c => Assert.Equal("length", c.GetProperty("finish_reason").GetString()));
        JsonElement greedy = await PostAsync(server, "/v1/chat/completions",
            new { messages = Messages, temperature = 0, max_tokens = FileMaxNewTokens, ignore_eos = true });
        Assert.All(texts, text => Assert.Equal(ChatTexts(greedy)[0], text));

        // The request's temperature and max_tokens win: three seeded samples at temperature 1 differ.
        JsonElement sampled = await PostAsync(server, "/v1/chat/completions",
            new { messages = Messages, n = 3, temperature = 1.0, seed = 3, max_tokens = 4, ignore_eos = true });
        Assert.Equal(3 * 4, CompletionTokens(sampled));
        Assert.Equal(3, ChatTexts(sampled).Distinct().Count());

        // Completions take the temperature too; their max_tokens stays OpenAI's (and vLLM's) 16.
        JsonElement completion = await PostAsync(server, "/v1/completions", new { prompt = "Once upon a time", n = 2, ignore_eos = true });
        Assert.Equal(2 * 16, CompletionTokens(completion));
        JsonElement greedyCompletion = await PostAsync(server, "/v1/completions",
            new { prompt = "Once upon a time", temperature = 0, max_tokens = 16, ignore_eos = true });
        Assert.All(CompletionTexts(completion), text => Assert.Equal(CompletionTexts(greedyCompletion)[0], text));
    }

    [Fact]
    public async Task Generation_config_vllm_ignores_the_files_defaults()
    {
        await using RunningServer server = await StartAsync("--generation-config", "vllm", "--max-model-len", "48");
        // The card says what the requests below get, not what the file recommends.
        Assert.Equal("1 1 0 -", await ShownDefaultsAsync(server));

        // Temperature 1, not the file's 0: three unseeded choices are three different samples.
        JsonElement sampled = await PostAsync(server, "/v1/chat/completions", new { messages = Messages, n = 3, max_tokens = 4, ignore_eos = true });
        Assert.Equal(3, ChatTexts(sampled).Distinct().Count());

        // No max tokens: the rest of the context window, not the file's max_new_tokens.
        JsonElement unbounded = await PostAsync(server, "/v1/chat/completions", new { messages = Messages, ignore_eos = true });
        int promptTokens = unbounded.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        Assert.Equal(48 - promptTokens, CompletionTokens(unbounded));
        Assert.True(CompletionTokens(unbounded) > FileMaxNewTokens);
    }

    [Fact]
    public async Task A_bad_generation_config_exits_non_zero_with_one_line_naming_the_file()
    {
        string file = Path.Combine(_model, "generation_config.json");
        File.WriteAllText(file, """{"eos_token_id": 50256, "top_p": 1.5}""");

        var (exitCode, output) = await LlmServerProcess.RunAsync(TimeSpan.FromSeconds(60), "serve", "--model", _model, "--port", "0");

        Assert.NotEqual(0, exitCode);
        string line = Assert.Single(output.Split('\n'), l => l.Contains(file));
        Assert.Contains("top_p holds 1.5", line);
        Assert.DoesNotContain("   at ", output);
    }
}
