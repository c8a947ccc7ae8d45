#pragma warning disable OPENAI001 // the SDK marks its Responses client experimental

using System.ClientModel;
using OpenAI;
using OpenAI.Responses;

namespace LlmServer.Tests.Responses;

/// <summary>The official OpenAI .NET SDK's Responses client against the server: a call, a stream, and a stored conversation.</summary>
public sealed class ResponsesDotNetSdkTests(ResponsesApiTests.Qwen3Server fixture) : IClassFixture<ResponsesApiTests.Qwen3Server>
{
    private ResponsesClient Client() =>
        new OpenAIClient(new ApiKeyCredential("not-checked"), new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "/v1") })
            .GetResponsesClient();

    [Fact]
    public async Task The_sdk_creates_streams_and_continues_a_response()
    {
        ResponsesClient client = Client();
        var options = new CreateResponseOptions("qwen3-random-2l-64d", [ResponseItem.CreateUserMessageItem("Hello there.")])
        {
            Instructions = "Be brief.",
            Temperature = 0,
            MaxOutputTokenCount = 6,
        };
        ResponseResult first = (await client.CreateResponseAsync(options)).Value;
        Assert.StartsWith("resp_", first.Id);
        Assert.Equal(6, first.Usage.OutputTokenCount);

        options.StreamingEnabled = true;
        var streamed = new System.Text.StringBuilder();
        await foreach (StreamingResponseUpdate update in await client.CreateResponseStreamingAsync(options))
        {
            if (update is StreamingResponseOutputTextDeltaUpdate delta)
            {
                streamed.Append(delta.Delta);
            }
        }
        Assert.Equal(first.GetOutputText(), streamed.ToString());

        var next = new CreateResponseOptions("qwen3-random-2l-64d", [ResponseItem.CreateUserMessageItem("And then?")])
        {
            PreviousResponseId = first.Id,
            Temperature = 0,
            MaxOutputTokenCount = 3,
        };
        ResponseResult second = (await client.CreateResponseAsync(next)).Value;
        Assert.Equal(first.Id, second.PreviousResponseId);
        Assert.True(second.Usage.InputTokenCount > first.Usage.InputTokenCount);
    }
}
