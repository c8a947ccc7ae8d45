using LlmServer.Bench.LoadTest;

namespace LlmServer.Bench.Tests.LoadTest;

public sealed class RandomPromptGeneratorTests
{
    private static readonly ServingBenchmarkOptions Completions = new() { BaseUrl = new Uri("http://127.0.0.1:8000"), NumPrompts = 50, InputLength = 33 };

    [Fact]
    public void CompletionsPrompts_AreExactlyInputLengthTokenIds_InTheSafeRange()
    {
        BenchmarkPrompt[] prompts = RandomPromptGenerator.Generate(Completions);

        Assert.Equal(50, prompts.Length);
        Assert.All(prompts, prompt =>
        {
            Assert.Null(prompt.Text);
            Assert.Equal(33, prompt.TokenIds!.Length);
            Assert.All(prompt.TokenIds, id => Assert.InRange(id, RandomPromptGenerator.LowestTokenId, RandomPromptGenerator.HighestTokenIdExclusive - 1));
        });
        Assert.Equal(50, prompts.Select(p => string.Join(',', p.TokenIds!)).Distinct().Count());
    }

    [Fact]
    public void Prompts_DependOnlyOnTheSeed()
    {
        string[] Render(ServingBenchmarkOptions options) => RandomPromptGenerator.Generate(options).Select(p => string.Join(',', p.TokenIds!)).ToArray();

        Assert.Equal(Render(Completions), Render(Completions));
        Assert.NotEqual(Render(Completions), Render(Completions with { Seed = 1 }));
    }

    [Fact]
    public void ChatAndSharedPrefixPrompts_AreWords_AfterThePrefix()
    {
        BenchmarkPrompt[] chat = RandomPromptGenerator.Generate(Completions with { Endpoint = ServingBenchmarkOptions.ChatCompletionsEndpoint });
        BenchmarkPrompt[] prefixed = RandomPromptGenerator.Generate(Completions with { SharedPrefix = "System: be brief." });

        Assert.All(chat, prompt => Assert.Equal(33, prompt.Text!.Split(' ').Length));
        Assert.All(prefixed, prompt =>
        {
            Assert.Null(prompt.TokenIds);
            Assert.StartsWith("System: be brief. ", prompt.Text);
            Assert.Equal(33, prompt.Text!["System: be brief. ".Length..].Split(' ').Length);
        });
    }
}
