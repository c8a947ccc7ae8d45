using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using LlmServer.Inference.Tests;
using LlmServer.Observability;

namespace LlmServer.Tests;

/// <summary>The server with int8 weights and a bfloat16 KV cache answers both text APIs and says how it keeps the model.</summary>
public class ReducedPrecisionServingTests
{
    private const string Model = "llama3-random-2l-64d";

    [Fact]
    public async Task Int8_weights_with_a_bfloat16_cache_answer_chat_and_completions_and_the_startup_log_names_both()
    {
        var log = new LockedStringWriter();
        await using RunningServer server = await RunningServer.StartAsync(
            ["--model", TestFixtures.ModelDirectory(Model), "--kv-cache-memory", "16MiB", "--quantization", "int8", "--kv-cache-dtype", "bfloat16"],
            services => services.AddSingleton(new LogOutput(log)));

        using HttpResponseMessage chat = await server.Http.PostAsJsonAsync("/v1/chat/completions", new
        {
            model = Model,
            messages = new[] { new { role = "user", content = "Say something." } },
            max_tokens = 8,
            temperature = 0,
        });
        Assert.Equal(HttpStatusCode.OK, chat.StatusCode);
        using JsonDocument chatBody = JsonDocument.Parse(await chat.Content.ReadAsStringAsync());
        Assert.NotEmpty(chatBody.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!);

        using HttpResponseMessage completion = await server.Http.PostAsJsonAsync("/v1/completions", new
        {
            model = Model,
            prompt = "The quick brown fox",
            max_tokens = 8,
            temperature = 0,
        });
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        using JsonDocument completionBody = JsonDocument.Parse(await completion.Content.ReadAsStringAsync());
        Assert.NotEmpty(completionBody.RootElement.GetProperty("choices")[0].GetProperty("text").GetString()!);

        string? serving = null;
        await Poll.UntilAsync(() => (serving = log.ToString().Split('\n').FirstOrDefault(l => l.Contains("Serving ", StringComparison.Ordinal))) is not null,
            TimeSpan.FromSeconds(10), "the startup line that names the model", () => $"the log was:\n{log}");
        Assert.Contains("int8 weights", serving);
        Assert.Contains("bfloat16 KV cache", serving);
    }
}
