using LlmServer.Bench.LoadTest;

namespace LlmServer.Bench.Tests.LoadTest;

public sealed class StreamChunkTests
{
    [Theory]
    [InlineData("""{"choices":[{"index":0,"text":" hello"}]}""", " hello")]
    [InlineData("""{"choices":[{"index":0,"delta":{"content":" hi"}}]}""", " hi")]
    [InlineData("""{"choices":[{"index":0,"delta":{"role":"assistant"}}]}""", null)]
    [InlineData("""{"choices":[]}""", null)]
    public void Text_ComesFromCompletionsTextOrChatDelta(string json, string? text)
    {
        StreamChunk chunk = StreamChunk.Parse(json);

        Assert.Equal(text, chunk.Text);
        Assert.Null(chunk.Error);
    }

    [Fact]
    public void Usage_IsRead()
    {
        StreamChunk chunk = StreamChunk.Parse("""{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}""");

        Assert.Equal((12, 5), (chunk.PromptTokens, chunk.CompletionTokens));
    }

    [Theory]
    [InlineData("""{"error":{"message":"out of memory","type":"internal_error"}}""", "out of memory")]
    [InlineData("""{"error":"overloaded"}""", "overloaded")]
    [InlineData("""{"object":"error","message":"bad request","code":400}""", "bad request")]
    [InlineData("""{"choices":[{"text":""" , "malformed stream event: {\"choices\":[{\"text\":")]
    [InlineData("[1,2]", "malformed stream event: [1,2]")]
    public void Errors_AreRecognisedInOpenAiAndOlderVllmShapes(string json, string error)
    {
        Assert.Equal(error, StreamChunk.Parse(json).Error);
    }
}
