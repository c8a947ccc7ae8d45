#pragma warning disable OPENAI001 // the SDK marks Seed experimental; streamed and non-streamed replies are compared per seed

using System.ClientModel;
using System.Text;
using System.Text.Json;
using LlmServer.Inference.Tests.StructuredOutput;
using LlmServer.Tests.ToolCalling;
using OpenAI;
using OpenAI.Chat;

namespace LlmServer.Tests.ClientSdks;

/// <summary>
/// The official OpenAI .NET SDK against structured outputs and tool calls on the Qwen3 fixture (random weights,
/// temperature 1.0): what the SDK sends is accepted, and what it reads back parses and satisfies the schema.
/// </summary>
public sealed class DotNetSdkTests(Qwen3Server fixture) : IClassFixture<Qwen3Server>
{
    private const string PersonSchema = """
        {"type":"object","properties":{
           "name":{"type":"string"},
           "role":{"type":"string","enum":["engineer","designer","manager"]},
           "address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"integer"}},
                      "required":["city","zip"],"additionalProperties":false},
           "skills":{"type":"array","items":{"type":"string"}}},
         "required":["name","role","address","skills"],"additionalProperties":false}
        """;

    private const string WeatherSchema = """
        {"type":"object","properties":{"city":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},
         "required":["city","unit"],"additionalProperties":false}
        """;

    private const string TimeSchema = """
        {"type":"object","properties":{"timezone":{"type":"string"},"hour24":{"type":"boolean"}},
         "required":["timezone","hour24"],"additionalProperties":false}
        """;

    private static readonly Dictionary<string, string> ToolSchemas = new() { ["get_weather"] = WeatherSchema, ["get_time"] = TimeSchema };

    private ChatClient Chat() =>
        new OpenAIClient(new ApiKeyCredential("not-checked"), new OpenAIClientOptions { Endpoint = new Uri(fixture.Server.BaseAddress, "/v1") })
            .GetChatClient("qwen3-random-2l-64d");

    private static ChatCompletionOptions ToolOptions(ChatToolChoice choice, int seed)
    {
        var options = new ChatCompletionOptions { ToolChoice = choice, Temperature = 1.0f, Seed = seed };
        options.Tools.Add(ChatTool.CreateFunctionTool("get_weather", "Current weather in a city", BinaryData.FromString(WeatherSchema), functionSchemaIsStrict: true));
        options.Tools.Add(ChatTool.CreateFunctionTool("get_time", "Current time in a timezone", BinaryData.FromString(TimeSchema), functionSchemaIsStrict: true));
        return options;
    }

    private static readonly ChatMessage[] AskForTools = [new UserChatMessage("What is the weather and the time in Paris?")];

    private static void AssertSatisfies(string schemaText, string json, string what)
    {
        using JsonDocument schema = JsonDocument.Parse(schemaText);
        using JsonDocument document = JsonDocument.Parse(json);
        string? problem = SchemaSubsetValidator.Check(document.RootElement, schema.RootElement, schema.RootElement);
        Assert.True(problem is null, $"{what} {json}: {problem}");
    }

    [Fact]
    public async Task Strict_json_schema_chat_parses_and_satisfies_the_schema()
    {
        var options = new ChatCompletionOptions
        {
            ResponseFormat = ChatResponseFormat.CreateJsonSchemaFormat("person", BinaryData.FromString(PersonSchema), jsonSchemaIsStrict: true),
            Temperature = 1.0f,
        };
        for (int seed = 1; seed <= 3; seed++)
        {
            options.Seed = seed;
            ChatCompletion completion = (await Chat().CompleteChatAsync([new UserChatMessage("Describe a person.")], options)).Value;

            Assert.Equal(ChatFinishReason.Stop, completion.FinishReason);
            AssertSatisfies(PersonSchema, completion.Content[0].Text, $"seed {seed}:");
        }
    }

    [Fact]
    public async Task Required_tool_choice_gives_calls_whose_arguments_satisfy_their_function()
    {
        ChatCompletion completion = (await Chat().CompleteChatAsync(AskForTools, ToolOptions(ChatToolChoice.CreateRequiredChoice(), seed: 5))).Value;

        Assert.Equal(ChatFinishReason.ToolCalls, completion.FinishReason);
        Assert.Empty(completion.Content);
        Assert.NotEmpty(completion.ToolCalls);
        foreach (ChatToolCall call in completion.ToolCalls)
        {
            Assert.Equal(ChatToolCallKind.Function, call.Kind);
            Assert.StartsWith("call_", call.Id, StringComparison.Ordinal);
            AssertSatisfies(ToolSchemas[call.FunctionName], call.FunctionArguments.ToString(), call.FunctionName);
        }
    }

    [Fact]
    public async Task Named_tool_choice_calls_that_function_once()
    {
        ChatCompletion completion = (await Chat().CompleteChatAsync(AskForTools, ToolOptions(ChatToolChoice.CreateFunctionChoice("get_time"), seed: 8))).Value;

        ChatToolCall call = Assert.Single(completion.ToolCalls);
        Assert.Equal("get_time", call.FunctionName);
        AssertSatisfies(TimeSchema, call.FunctionArguments.ToString(), call.FunctionName);
    }

    [Fact]
    public async Task Streamed_tool_calls_reassemble_to_the_non_streamed_calls_of_the_same_seed()
    {
        for (int seed = 1; seed <= 3; seed++)
        {
            ChatCompletionOptions options = ToolOptions(ChatToolChoice.CreateRequiredChoice(), seed);
            ChatCompletion whole = (await Chat().CompleteChatAsync(AskForTools, options)).Value;

            var calls = new SortedDictionary<int, (string Id, string Name, StringBuilder Arguments)>();
            var content = new StringBuilder();
            ChatFinishReason? finishReason = null;
            await foreach (StreamingChatCompletionUpdate update in Chat().CompleteChatStreamingAsync(AskForTools, options))
            {
                finishReason ??= update.FinishReason;
                foreach (ChatMessageContentPart part in update.ContentUpdate)
                {
                    content.Append(part.Text);
                }

                foreach (StreamingChatToolCallUpdate part in update.ToolCallUpdates)
                {
                    if (!calls.TryGetValue(part.Index, out var call))
                    {
                        Assert.False(string.IsNullOrEmpty(part.ToolCallId), $"the first delta of call {part.Index} has no id");
                        call = (part.ToolCallId, part.FunctionName, new StringBuilder());
                        calls[part.Index] = call;
                    }

                    call.Arguments.Append(part.FunctionArgumentsUpdate?.ToString());
                }
            }

            Assert.Equal(ChatFinishReason.ToolCalls, finishReason);
            Assert.Equal("", content.ToString());
            Assert.Equal(
                whole.ToolCalls.Select(c => (c.FunctionName, c.FunctionArguments.ToString())),
                calls.Values.Select(c => (c.Name, c.Arguments.ToString())));
            foreach ((_, string name, StringBuilder arguments) in calls.Values)
            {
                AssertSatisfies(ToolSchemas[name], arguments.ToString(), name);
            }
        }
    }
}
