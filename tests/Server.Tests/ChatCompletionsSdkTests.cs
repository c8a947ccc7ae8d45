using System.ClientModel;
using OpenAI;
using OpenAI.Chat;

namespace LlmServer.Tests;

/// <summary>The official OpenAI .NET SDK against the running server: it must just work.</summary>
[Collection(ServerCollection.Name)]
public class ChatCompletionsSdkTests(ServerFixture server)
{
    private ChatClient Chat(string model = ServerFixture.ModelName) =>
        new OpenAIClient(new ApiKeyCredential("not-checked"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") })
            .GetChatClient(model);

    private static readonly ChatMessage[] Conversation =
    [
        new SystemChatMessage("You are terse."),
        new UserChatMessage("Hello, my name is"),
    ];

    [Fact]
    public async Task Completes_a_chat_with_exact_usage_and_finish_reason()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 7, Temperature = 0 };
        ChatCompletion completion = (await Chat().CompleteChatAsync(Conversation, options)).Value;

        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(ChatFinishReason.Length, completion.FinishReason);
        Assert.False(string.IsNullOrEmpty(completion.Content[0].Text));
        Assert.Equal(ServerFixture.ModelName, completion.Model);
        Assert.StartsWith("chatcmpl-", completion.Id);
        Assert.Equal(7, completion.Usage.OutputTokenCount);
        Assert.Equal(await CountChatPromptTokensAsync(), completion.Usage.InputTokenCount);
        Assert.Equal(completion.Usage.InputTokenCount + 7, completion.Usage.TotalTokenCount);
    }

    [Fact]
    public async Task Streams_the_same_text_as_the_non_streaming_call_and_ends_with_usage()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 10, Temperature = 0 };
        string expected = (await Chat().CompleteChatAsync(Conversation, options)).Value.Content[0].Text;

        var text = new System.Text.StringBuilder();
        var updates = new List<StreamingChatCompletionUpdate>();
        await foreach (StreamingChatCompletionUpdate update in Chat().CompleteChatStreamingAsync(Conversation, options))
        {
            updates.Add(update);
            foreach (ChatMessageContentPart part in update.ContentUpdate)
            {
                text.Append(part.Text);
            }
        }

        Assert.Equal(expected, text.ToString());
        Assert.True(updates.Count > 3, "tokens should arrive as several chunks");
        Assert.Contains(updates, u => u.FinishReason == ChatFinishReason.Length);
        ChatTokenUsage usage = updates.Last(u => u.Usage is not null).Usage;
        Assert.Equal(10, usage.OutputTokenCount);
        Assert.Equal(await CountChatPromptTokensAsync(), usage.InputTokenCount);
    }

    [Fact]
    public async Task Returns_token_logprobs_with_alternatives_in_openai_shape()
    {
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 5, Temperature = 0, IncludeLogProbabilities = true, TopLogProbabilityCount = 3 };
        ChatCompletion completion = (await Chat().CompleteChatAsync(Conversation, options)).Value;

        Assert.Equal(5, completion.ContentTokenLogProbabilities.Count);
        foreach (ChatTokenLogProbabilityDetails token in completion.ContentTokenLogProbabilities)
        {
            Assert.True(token.LogProbability <= 0);
            Assert.Equal(3, token.TopLogProbabilities.Count);
            // Greedy: the chosen token is the most likely alternative.
            Assert.Equal(token.Token, token.TopLogProbabilities[0].Token);
            Assert.Equal(token.LogProbability, token.TopLogProbabilities[0].LogProbability, 5);
            Assert.Equal(token.Token, System.Text.Encoding.UTF8.GetString(token.Utf8Bytes!.Value.ToArray()));
        }
        byte[] allBytes = completion.ContentTokenLogProbabilities.SelectMany(t => t.Utf8Bytes!.Value.ToArray()).ToArray();
        Assert.Equal(completion.Content[0].Text, System.Text.Encoding.UTF8.GetString(allBytes));
    }

    [Fact]
    public async Task Seeded_sampling_is_reproducible()
    {
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK; the server supports it fully.
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 12, Temperature = 1.0f, TopP = 0.95f, Seed = 42 };
#pragma warning restore OPENAI001
        string first = (await Chat().CompleteChatAsync(Conversation, options)).Value.Content[0].Text;
        string second = (await Chat().CompleteChatAsync(Conversation, options)).Value.Content[0].Text;
        Assert.Equal(first, second);
    }

    [Fact]
    public async Task An_unknown_model_is_a_404_the_sdk_reports()
    {
        var error = await Assert.ThrowsAsync<ClientResultException>(() => Chat("no-such-model").CompleteChatAsync(Conversation));
        Assert.Equal(404, error.Status);
        Assert.Contains("no-such-model", error.Message);
    }

    [Fact]
    public async Task Lists_the_served_model()
    {
        var models = new OpenAIClient(new ApiKeyCredential("x"), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "/v1") }).GetOpenAIModelClient();
        var list = (await models.GetModelsAsync()).Value;
        Assert.Equal([ServerFixture.ModelName], list.Select(m => m.Id));
        Assert.Equal("llmserver", list[0].OwnedBy);
    }

    private async Task<int> CountChatPromptTokensAsync()
    {
        var (status, body) = await server.PostAsync("/tokenize", new
        {
            model = ServerFixture.ModelName,
            messages = new object[]
            {
                new { role = "system", content = "You are terse." },
                new { role = "user", content = "Hello, my name is" },
            },
        });
        Assert.Equal(200, status);
        return body.GetProperty("count").GetInt32();
    }
}
