using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Tokenization;
using LlmServer.OpenAi.Chat;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Tokenizer;

/// <summary>vLLM's /tokenize and /detokenize, for clients that count or inspect tokens.</summary>
public static class TokenizerApi
{
    public static IEndpointRouteBuilder MapTokenizer(this IEndpointRouteBuilder app)
    {
        app.MapPost("/tokenize", Tokenize).RequireKey(KeyScope.Inference).WithTags("Tokenizer")
            .WithSummary("vLLM's /tokenize: a prompt or chat messages to token ids").Accepts<TokenizeRequest>("application/json")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
        app.MapPost("/detokenize", Detokenize).RequireKey(KeyScope.Inference).WithTags("Tokenizer")
            .WithSummary("vLLM's /detokenize: token ids to text").Accepts<DetokenizeRequest>("application/json")
            .ProducesOpenAiErrors(StatusCodes.Status400BadRequest, StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    private static async Task<Ok<TokenizeResponse>> Tokenize(HttpContext context, GenerationService generation)
    {
        var request = await OpenAiJson.ReadBodyAsync<TokenizeRequest>(context.Request, context.RequestAborted);
        ServedModel model = generation.ResolveModel(request.Model);
        string text;
        if (request.Messages is not null)
        {
            SamplingRequestParser.Require(request.Prompt is null, "prompt", "Send either prompt or messages, not both.");
            (IReadOnlyList<ChatMessage> messages, JsonElement? tools) = ChatMessages.ForTemplate(request.Messages, model.ChatFormatter, ChatMessages.Tools(request.Tools));
            try
            {
                text = model.ChatFormatter.Format(messages, request.AddGenerationPrompt ?? true, tools);
            }
            catch (ChatTemplateException e)
            {
                throw ApiException.InvalidParameter("messages", $"The chat template rejected the messages: {e.Message}");
            }
        }
        else
        {
            SamplingRequestParser.Require(request.Prompt is not null, "prompt", "prompt (a string) or messages is required.");
            SamplingRequestParser.Require(request.Tools.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null, "tools", "tools are rendered with messages; a prompt has none.");
            text = request.Prompt!;
        }
        // No context check, as vLLM's /tokenize has none: counting a long text is what it is for.
        // Linear in the text, and it stops if the client leaves.
        bool addSpecialTokens = request.AddSpecialTokens ?? request.Messages is null;
        IReadOnlyList<int> tokens = model.Tokenizer.Encode(text, addSpecialTokens, int.MaxValue, context.RequestAborted);
        return TypedResults.Ok(new TokenizeResponse(tokens, tokens.Count, model.MaxModelLen));
    }

    private static async Task<Ok<DetokenizeResponse>> Detokenize(HttpContext context, GenerationService generation)
    {
        var request = await OpenAiJson.ReadBodyAsync<DetokenizeRequest>(context.Request, context.RequestAborted);
        ServedModel model = generation.ResolveModel(request.Model);
        SamplingRequestParser.Require(request.Tokens.ValueKind == JsonValueKind.Array, "tokens", "tokens must be a list of token ids.");
        IReadOnlyList<int> ids = PromptInput.ReadTokenIds(request.Tokens, model.Tokenizer, "tokens");
        return TypedResults.Ok(new DetokenizeResponse(model.Tokenizer.Decode(ids)));
    }
}
