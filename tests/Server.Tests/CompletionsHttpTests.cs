using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests;

namespace LlmServer.Tests;

/// <summary>/v1/completions on the wire: the reference continuation, the legacy logprobs shape, and SSE.</summary>
[Collection(ServerCollection.Name)]
public class CompletionsHttpTests(ServerFixture server)
{
    private static readonly JsonElement[] ReferenceCases = LoadReference();

    private static JsonElement[] LoadReference()
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestFixtures.ModelDirectory(ServerFixture.ModelName), "reference.json")));
        return document.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone()).ToArray();
    }

    public static TheoryData<int> CaseIndexes() => new(Enumerable.Range(0, ReferenceCases.Length));

    [Theory]
    [MemberData(nameof(CaseIndexes))]
    public async Task Greedy_completion_returns_the_reference_continuation(int caseIndex)
    {
        JsonElement reference = ReferenceCases[caseIndex];
        int steps = reference.GetProperty("greedy_ids").GetArrayLength();
        var (status, body) = await server.PostAsync("/v1/completions", new
        {
            model = ServerFixture.ModelName,
            prompt = reference.GetProperty("prompt").GetString(),
            max_tokens = steps,
            temperature = 0,
        });

        Assert.Equal(200, status);
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        JsonElement choice = body.GetProperty("choices")[0];
        Assert.Equal(reference.GetProperty("greedy_text").GetString(), choice.GetProperty("text").GetString());
        Assert.Equal("length", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(JsonValueKind.Null, choice.GetProperty("logprobs").ValueKind);
        JsonElement usage = body.GetProperty("usage");
        Assert.Equal(reference.GetProperty("prompt_ids").GetArrayLength(), usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(steps, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(usage.GetProperty("prompt_tokens").GetInt32() + steps, usage.GetProperty("total_tokens").GetInt32());
    }

    [Fact]
    public async Task Logprobs_come_in_the_legacy_shape_and_match_the_reference()
    {
        JsonElement reference = ReferenceCases[0];
        var (status, body) = await server.PostAsync("/v1/completions", new
        {
            model = ServerFixture.ModelName,
            prompt = reference.GetProperty("prompt_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            max_tokens = 6,
            temperature = 0,
            logprobs = 3,
        });

        Assert.Equal(200, status);
        JsonElement choice = body.GetProperty("choices")[0];
        JsonElement logprobs = choice.GetProperty("logprobs");
        string text = choice.GetProperty("text").GetString()!;
        string[] tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray();
        int[] offsets = logprobs.GetProperty("text_offset").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        Assert.Equal(6, tokens.Length);
        Assert.Equal(text, string.Concat(tokens));
        for (int i = 0; i < tokens.Length; i++)
        {
            Assert.Equal(tokens[i], text.Substring(offsets[i], tokens[i].Length));
            double expected = reference.GetProperty("greedy")[i].GetProperty("logprob").GetDouble();
            Assert.Equal(expected, logprobs.GetProperty("token_logprobs")[i].GetDouble(), 2e-3);
            JsonElement top = logprobs.GetProperty("top_logprobs")[i];
            Assert.Equal(3, top.EnumerateObject().Count());
            Assert.Equal(tokens[i], top.EnumerateObject().First().Name);
        }
    }

    [Fact]
    public async Task Top_logprobs_always_hold_the_sampled_token_even_when_it_is_not_among_the_best()
    {
        var (status, body) = await server.PostAsync("/v1/completions", new
        {
            model = ServerFixture.ModelName, prompt = "Hello, my name is", max_tokens = 16, temperature = 1.5, seed = 11, logprobs = 1,
        });
        Assert.Equal(200, status);
        JsonElement logprobs = body.GetProperty("choices")[0].GetProperty("logprobs");
        string[] tokens = logprobs.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray();
        JsonElement[] top = logprobs.GetProperty("top_logprobs").EnumerateArray().ToArray();
        for (int i = 0; i < tokens.Length; i++)
        {
            Assert.InRange(top[i].EnumerateObject().Count(), 1, 2);
            Assert.Equal(logprobs.GetProperty("token_logprobs")[i].GetDouble(), top[i].GetProperty(tokens[i]).GetDouble());
        }
        Assert.Contains(top, t => t.EnumerateObject().Count() == 2);   // at temperature 1.5 some token is not the top one

        var (_, zero) = await server.PostAsync("/v1/completions", new { model = ServerFixture.ModelName, prompt = "Hi", max_tokens = 3, logprobs = 0 });
        Assert.All(zero.GetProperty("choices")[0].GetProperty("logprobs").GetProperty("top_logprobs").EnumerateArray(),
            t => Assert.Single(t.EnumerateObject()));
    }

    [Fact]
    public async Task An_empty_prompt_is_answered_and_echoed_as_sent()
    {
        var (status, body) = await server.PostAsync("/v1/completions", new { model = ServerFixture.ModelName, prompt = "", max_tokens = 3, echo = true, temperature = 0 });
        Assert.Equal(200, status);
        Assert.DoesNotContain("<|endoftext|>", body.GetProperty("choices")[0].GetProperty("text").GetString());
        Assert.Equal(3, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task A_stop_token_is_reported_as_a_numeric_stop_reason()
    {
        JsonElement reference = ReferenceCases[0];
        int third = reference.GetProperty("greedy_ids")[2].GetInt32();
        var (status, body) = await server.PostAsync("/v1/completions", new
        {
            model = ServerFixture.ModelName, prompt = reference.GetProperty("prompt").GetString(), max_tokens = 12, temperature = 0, stop_token_ids = new[] { third },
        });
        Assert.Equal(200, status);
        JsonElement choice = body.GetProperty("choices")[0];
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(third, choice.GetProperty("stop_reason").GetInt32());
        Assert.Equal(" flo EV", choice.GetProperty("text").GetString());
    }

    [Fact]
    public async Task Streaming_sends_sse_chunks_then_usage_then_done()
    {
        JsonElement reference = ReferenceCases[1];
        string body = JsonSerializer.Serialize(new
        {
            model = ServerFixture.ModelName,
            prompt = reference.GetProperty("prompt").GetString(),
            max_tokens = 12,
            temperature = 0,
            stream = true,
            stream_options = new { include_usage = true },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using HttpResponseMessage response = await server.Http.SendAsync(request);
        string raw = await response.Content.ReadAsStringAsync();

        Assert.Equal("text/event-stream", response.Content.Headers.ContentType!.MediaType);
        string[] events = raw.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.All(events, e => Assert.StartsWith("data: ", e));
        Assert.Equal("data: [DONE]", events[^1]);
        JsonElement[] chunks = events[..^1].Select(e => JsonDocument.Parse(e["data: ".Length..]).RootElement).ToArray();

        JsonElement usageChunk = chunks[^1];
        Assert.Empty(usageChunk.GetProperty("choices").EnumerateArray());
        Assert.Equal(12, usageChunk.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        JsonElement[] textChunks = chunks[..^1];
        Assert.True(textChunks.Length > 2);
        Assert.All(textChunks, c => Assert.Equal(JsonValueKind.Null, c.GetProperty("usage").ValueKind));
        Assert.Equal(reference.GetProperty("greedy_text").GetString(), string.Concat(textChunks.Select(c => c.GetProperty("choices")[0].GetProperty("text").GetString())));
        Assert.Equal("length", textChunks[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        Assert.All(textChunks[..^1], c => Assert.Equal(JsonValueKind.Null, c.GetProperty("choices")[0].GetProperty("finish_reason").ValueKind));
    }

    [Fact]
    public async Task A_streamed_request_with_several_prompts_counts_every_prompt_once_in_its_usage()
    {
        string body = JsonSerializer.Serialize(new
        {
            model = ServerFixture.ModelName,
            prompt = new[] { "Hello, my name is", "In 1815, Napoleon" },
            max_tokens = 4,
            n = 2,
            stream = true,
            stream_options = new { include_usage = true },
        });
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using HttpResponseMessage response = await server.Http.SendAsync(request);
        string[] events = (await response.Content.ReadAsStringAsync()).Split("\n\n", StringSplitOptions.RemoveEmptyEntries);

        JsonElement usage = JsonDocument.Parse(events[^2]["data: ".Length..]).RootElement.GetProperty("usage");
        // As the non-streamed answer counts them: each prompt once (5 + 5 tokens), every sample's output.
        Assert.Equal(5 + 5, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(4 * 4, usage.GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task Greedy_requests_give_the_reference_tokens_among_31_concurrent_others()
    {
        Task<(int Status, JsonElement Body)>[] crowd = Enumerable.Range(0, 32).Select(i =>
        {
            JsonElement reference = ReferenceCases[i % ReferenceCases.Length];
            bool greedy = i % 4 == 0;
            return server.PostAsync("/v1/completions", new
            {
                model = ServerFixture.ModelName,
                prompt = reference.GetProperty("prompt").GetString(),
                max_tokens = greedy ? 12 : 5 + i % 9,
                temperature = greedy ? 0 : 0.9,
                seed = i,
                ignore_eos = true,
            });
        }).ToArray();
        var results = await Task.WhenAll(crowd);

        for (int i = 0; i < 32; i += 4)
        {
            Assert.Equal(200, results[i].Status);
            Assert.Equal(ReferenceCases[i % ReferenceCases.Length].GetProperty("greedy_text").GetString(),
                results[i].Body.GetProperty("choices")[0].GetProperty("text").GetString());
        }
        Assert.All(results, r => Assert.Equal(200, r.Status));
    }

    [Fact]
    public async Task A_repeated_prompt_reports_its_cached_tokens()
    {
        string prompt = string.Join(' ', Enumerable.Repeat("a shared system prompt that repeats", 8));
        var (_, first) = await server.PostAsync("/v1/completions", new { model = ServerFixture.ModelName, prompt, max_tokens = 8, temperature = 0 });
        var (_, second) = await server.PostAsync("/v1/completions", new { model = ServerFixture.ModelName, prompt, max_tokens = 8, temperature = 0 });

        int promptTokens = second.GetProperty("usage").GetProperty("prompt_tokens").GetInt32();
        int cached = second.GetProperty("usage").GetProperty("prompt_tokens_details").GetProperty("cached_tokens").GetInt32();
        Assert.Equal((promptTokens - 1) / 16 * 16, cached);
        Assert.Equal(first.GetProperty("choices")[0].GetProperty("text").GetString(), second.GetProperty("choices")[0].GetProperty("text").GetString());
    }

    [Fact]
    public async Task A_stop_string_ends_the_completion_without_returning_it()
    {
        var (status, body) = await server.PostAsync("/v1/completions", new
        {
            model = ServerFixture.ModelName,
            prompt = "Hello, my name is",
            max_tokens = 12,
            temperature = 0,
            stop = new[] { "gations EV" },
        });
        Assert.Equal(200, status);
        JsonElement choice = body.GetProperty("choices")[0];
        Assert.Equal(" flo EV investi", choice.GetProperty("text").GetString());
        Assert.Equal("stop", choice.GetProperty("finish_reason").GetString());
        Assert.Equal(4, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }

    [Fact]
    public async Task N_choices_and_several_prompts_are_all_answered()
    {
        var (status, body) = await server.PostAsync("/v1/completions", new
        {
            model = ServerFixture.ModelName,
            prompt = new[] { "Hello, my name is", "In 1815, Napoleon" },
            max_tokens = 4,
            n = 2,
            temperature = 0.9,
            seed = 3,
        });
        Assert.Equal(200, status);
        JsonElement[] choices = body.GetProperty("choices").EnumerateArray().ToArray();
        Assert.Equal([0, 1, 2, 3], choices.Select(c => c.GetProperty("index").GetInt32()));
        Assert.Equal(16, body.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.Equal(5 + 5, body.GetProperty("usage").GetProperty("prompt_tokens").GetInt32());   // counted once per prompt, not per choice
    }
}
