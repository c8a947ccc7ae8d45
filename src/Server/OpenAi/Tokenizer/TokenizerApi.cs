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
        app.MapGet("/tokenizer_info", TokenizerInfo).RequireKey(KeyScope.Inference).WithTags("Tokenizer")
            .WithSummary("vLLM's /tokenizer_info: the special tokens and chat template, what lm-eval-harness's remote tokenizer reads")
            .ProducesOpenAiErrors(StatusCodes.Status401Unauthorized, StatusCodes.Status404NotFound, StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    /// <summary>
    /// lm-eval-harness's default tokenizer backend probes this, then tokenizes through /tokenize, so it needs no copy of the
    /// tokenizer. The BOS is whatever a text prompt is given in front (nothing for GPT-2 and Qwen).
    /// </summary>
    private static Ok<TokenizerInfoResponse> TokenizerInfo(string? model, GenerationService generation)
    {
        ServedModel served = generation.ResolveModel(model);
        ITokenizer tokenizer = served.Tokenizer;
        IReadOnlyList<int> prefix = tokenizer.Encode("", addSpecialTokens: true, int.MaxValue, CancellationToken.None);
        return TypedResults.Ok(new TokenizerInfoResponse(tokenizer.Decode([tokenizer.EndOfTextId]), prefix.Count > 0 ? tokenizer.Decode(prefix) : null,
            served.ChatFormatter.IsDefaultTemplate ? null : served.ChatFormatter.TemplateSource, served.MaxModelLen));
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
