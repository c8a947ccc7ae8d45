using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Engine;
using LlmServer.Training.DemoCorpus;

namespace LlmServer.Commands;

/// <summary>
/// <c>eval --tools calculator</c>: each question goes to the chat endpoint of a server started in this process with the
/// calculator tool offered (tool_choice "auto"), as a client with that tool would send it; the calls the model makes
/// are run by <see cref="DemoCalculator"/> and answered with tool messages, and the reply that follows is the one judged.
/// </summary>
internal static class ToolUseEvaluation
{
    /// <summary>Rounds of calls answered per question, so a model that keeps calling cannot hold the run forever.</summary>
    public const int MaxToolRounds = 3;

    // Enough to keep the engine's batch full without queueing the whole set behind its admission limit.
    private const int ConcurrentConversations = 32;

    /// <summary>What one question came to: the final reply, how many calls the model made, and how many of those the calculator could run.</summary>
    public sealed record Conversation(string Reply, int Calls, int CallsRun);

    /// <param name="maxTokens">Each reply's limit, or null for the chat endpoint's own (the rest of the context).</param>
    public static async Task<IReadOnlyList<Conversation>> RunAsync(string modelDirectory, IReadOnlyList<IReadOnlyList<ChatMessage>> prompts,
        int? maxTokens, int threads, ServingPrecision precision)
    {
        string dataDirectory = Directory.CreateTempSubdirectory("llmserver-eval-").FullName;
        try
        {
            List<string> flags =
            [
                "--model", modelDirectory, "--served-model-name", "eval", "--host", "127.0.0.1", "--port", "0",
                "--data-dir", dataDirectory, "--no-training", .. precision.ServeFlags,
            ];
            if (threads > 0)
            {
                flags.AddRange(["--threads", threads.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            }
            await using WebApplication app = ServerApplication.Build(flags, new Dictionary<string, string?> { ["Serilog:MinimumLevel:Default"] = "Warning" });
            await app.StartAsync();
            await app.Services.GetRequiredService<IEngineClient>().Ready;
            using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(30) };
            JsonNode tool = JsonNode.Parse(DemoCalculator.ToolJson)!;
            using var slots = new SemaphoreSlim(ConcurrentConversations);
            Task<Conversation>[] conversations = prompts.Select(async (prompt, i) =>
            {
                await slots.WaitAsync();
                try
                {
                    return await ConverseAsync(http, prompt, tool, maxTokens, $"case {i + 1}");
                }
                finally
                {
                    slots.Release();
                }
            }).ToArray();
            Conversation[] results = await Task.WhenAll(conversations);
            await app.StopAsync();
            return results;
        }
        finally
        {
            Directory.Delete(dataDirectory, recursive: true);
        }
    }

    private static async Task<Conversation> ConverseAsync(HttpClient http, IReadOnlyList<ChatMessage> prompt, JsonNode tool, int? maxTokens, string subject)
    {
        var messages = new JsonArray(prompt.Select(m => (JsonNode)new JsonObject { ["role"] = m.Role, ["content"] = m.Content }).ToArray());
        int calls = 0, callsRun = 0;
        for (int round = 0; ; round++)
        {
            var request = new JsonObject
            {
                ["model"] = "eval",
                ["messages"] = messages.DeepClone(),
                ["tools"] = new JsonArray(tool.DeepClone()),
                ["temperature"] = 0,
            };
            if (maxTokens is { } limit)
            {
                request["max_tokens"] = limit;
            }
            using HttpResponseMessage response = await http.PostAsJsonAsync("/v1/chat/completions", request);
            string body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == System.Net.HttpStatusCode.BadRequest && round > 0
                && JsonNode.Parse(body)?["error"]?["code"]?.GetValue<string>() == "context_length_exceeded")
            {
                // Calls and results filled the model's context before it answered: a wrong answer, not a broken run.
                return new Conversation($"(no reply: the context filled up after {calls} calls)", calls, callsRun);
            }
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidDataException($"{subject}: the server answered {(int)response.StatusCode}: {body}");
            }
            JsonNode message = JsonNode.Parse(body)!["choices"]![0]!["message"]!;
            if (message["tool_calls"] is not JsonArray toolCalls || toolCalls.Count == 0 || round == MaxToolRounds)
            {
                return new Conversation((string?)message["content"] ?? "", calls, callsRun);
            }

            messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = null, ["tool_calls"] = toolCalls.DeepClone() });
            foreach (JsonNode? call in toolCalls)
            {
                calls++;
                string result = RunCall(call!["function"]!);
                callsRun += result.StartsWith("error:", StringComparison.Ordinal) ? 0 : 1;
                messages.Add(new JsonObject { ["role"] = "tool", ["tool_call_id"] = (string?)call["id"], ["content"] = result });
            }
        }
    }

    /// <summary>The calculator's answer to one call, or an "error: ..." the model is told instead (as a client would tell it).</summary>
    private static string RunCall(JsonNode function)
    {
        string name = (string?)function["name"] ?? "";
        if (name != DemoCalculator.Name)
        {
            return $"error: no tool named {name}";
        }
        try
        {
            JsonNode? arguments = JsonNode.Parse((string?)function["arguments"] ?? "");
            return arguments?["expression"] is JsonValue expression && expression.TryGetValue(out string? text)
                ? DemoCalculator.Evaluate(text)
                : "error: the arguments need an \"expression\" string";
        }
        catch (Exception e) when (e is JsonException or FormatException)
        {
            return $"error: {e.Message}";
        }
    }
}
