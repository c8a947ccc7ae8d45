using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Observability;
using LlmServer.OpenAi.Chat;
using LlmServer.OpenAi.Chat.ToolCalling;
using LlmServer.OpenAi.Generation;

namespace LlmServer.OpenAi.Responses;

/// <summary>
/// POST /v1/responses over chat's machinery (template, sampling, structured outputs, tool calling), with the
/// conversation kept by the server: a stored response is the next request's previous_response_id.
/// </summary>
public sealed class ResponseService(ChatCompletionService chat, GenerationService generation, ResponseStore store, RequestLog log)
{
    public async Task HandleAsync(CreateResponseRequest request, HttpContext context)
    {
        CheckAccepted(request);
        IReadOnlyList<ResponseItem> input = ResponseInput.Read(request.Input);
        IReadOnlyList<ResponseItem> history = request.PreviousResponseId is { } previous ? Conversation(previous) : [];
        ChatCompletionRequest chatRequest = ChatRequestTranslation.ToChat(request, [.. history, .. input]);
        string id = ResponseStore.NewId();
        using PreparedChat prepared = Prepare(chatRequest, context, id);
        ResponseObject Response(string status, IReadOnlyList<ResponseItem> output) => Echo(request, id, prepared.Model.Name, status, output);

        if (request.Stream ?? false)
        {
            var stream = new ResponseEventStream(context.Response, Response("in_progress", []), prepared.NewReader());
            ResponseObject? streamed = await stream.RunAsync(generation.GenerateAsync(prepared.Choices, context.RequestAborted), context.RequestAborted);
            if (streamed is not null)
            {
                Finish(context, request, input, streamed);
            }
            return;
        }

        ChoiceAccumulator accumulator = (await generation.CollectAsync(prepared.Choices, context.RequestAborted))[0];
        // The same parser as the stream's, fed the whole text at once: both give the same items.
        ToolCallReader? reader = prepared.NewReader();
        reader?.Feed(accumulator.Text);
        reader?.Finish();
        bool cut = accumulator.FinishReason == FinishReason.Length;
        ResponseObject response = Completed(Response(cut ? "incomplete" : "completed", OutputItems(accumulator.Text, reader, cut)), accumulator);
        Finish(context, request, input, response);
        await context.Response.WriteAsJsonAsync(response, OpenAiJson.Options, context.RequestAborted);
    }

    private PreparedChat Prepare(ChatCompletionRequest chatRequest, HttpContext context, string id)
    {
        try
        {
            return chat.Prepare(chatRequest, context, id);
        }
        catch (ApiException refusal)
        {
            throw ChatParameterNames.InResponsesTerms(refusal);
        }
    }

    public ResponseObject Get(string id) => Find(id).Response;

    public ResponseDeleted Delete(string id) => store.Delete(id) ? new ResponseDeleted(id) : throw NotFound(id);

    /// <param name="limit">Taken as text, so a limit that is not a number gets OpenAI's error naming it.</param>
    public ResponseItemList InputItems(string id, string? limit, string? order, string? after)
    {
        int pageSize = 20;
        if (limit is not null && !int.TryParse(limit, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out pageSize)
            || pageSize is < 1 or > 100)
        {
            throw ApiException.InvalidParameter("limit", "limit must be between 1 and 100.");
        }
        SamplingRequestParser.Require(order is null or "asc" or "desc", "order", $"order must be 'asc' or 'desc', got '{order}'.");
        IEnumerable<ResponseItem> items = Find(id).InputItems;
        // Newest first unless asked otherwise, as OpenAI lists them.
        if (order != "asc")
        {
            items = items.Reverse();
        }
        if (after is not null)
        {
            items = items.SkipWhile(item => item.Id != after).Skip(1);
        }
        List<ResponseItem> page = items.Take(pageSize + 1).ToList();
        return new ResponseItemList(page.Take(pageSize).ToList(), page.Count > pageSize);
    }

    /// <summary>A stored response's whole conversation: its predecessors', then its own input and output.</summary>
    private IReadOnlyList<ResponseItem> Conversation(string id)
    {
        var chain = new List<StoredResponse>();
        for (string? next = id; next is not null; next = chain[^1].Response.PreviousResponseId)
        {
            StoredResponse stored = store.Find(next) ?? throw new ApiException(StatusCodes.Status404NotFound,
                $"Previous response with id '{next}' not found.", param: "previous_response_id", code: "previous_response_not_found");
            chain.Add(stored);
        }
        chain.Reverse();
        return chain.SelectMany(stored => stored.InputItems.Concat(stored.Response.Output)).ToList();
    }

    private StoredResponse Find(string id) => store.Find(id) ?? throw NotFound(id);

    private static ApiException NotFound(string id) =>
        new(StatusCodes.Status404NotFound, $"Response with id '{id}' not found.", param: "response_id");

    private void Finish(HttpContext context, CreateResponseRequest request, IReadOnlyList<ResponseItem> input, ResponseObject response)
    {
        log.SetTokens(context, response.Usage?.InputTokens ?? 0, response.Usage?.OutputTokens);
        log.SetCompletion(context, () => string.Join("\n", response.Output.Select(item => item switch
        {
            MessageItem message => message.JoinedText(),
            FunctionCallItem call => $"{call.Name}({call.Arguments})",
            _ => "",
        })));
        if (request.Store ?? true)
        {
            store.Save(new StoredResponse(response, input));
        }
    }

    /// <summary>The reply as items: its text as one assistant message (none when the model only called tools), then one item per call.</summary>
    public static IReadOnlyList<ResponseItem> OutputItems(string text, ToolCallReader? reader, bool cut)
    {
        string status = cut ? "incomplete" : "completed";
        var items = new List<ResponseItem>();
        string? content = reader is null ? text : reader.Content;
        if (content is not null && (content.Length > 0 || reader is not { HasCalls: true }))
        {
            items.Add(new MessageItem(ResponseInput.NewId("msg"), "assistant", status, [new OutputText(content)]));
        }
        foreach (ToolCall call in reader?.Calls ?? [])
        {
            items.Add(new FunctionCallItem(ResponseInput.NewId("fc"), call.Id, call.Function.Name, call.Function.Arguments, status));
        }
        return items;
    }

    public static ResponseObject Completed(ResponseObject response, ChoiceAccumulator accumulator) => response with
    {
        IncompleteDetails = response.Status == "incomplete" ? new IncompleteDetails("max_output_tokens") : null,
        Usage = new ResponseUsage(accumulator.PromptTokens, accumulator.CompletionTokens, accumulator.PromptTokens + accumulator.CompletionTokens,
            new InputTokensDetails(accumulator.CachedPromptTokens), new OutputTokensDetails(0)),
    };

    private static ResponseObject Echo(CreateResponseRequest request, string id, string model, string status, IReadOnlyList<ResponseItem> output) =>
        new(id, DateTimeOffset.UtcNow.ToUnixTimeSeconds(), status, model, output)
        {
            Instructions = request.Instructions,
            MaxOutputTokens = request.MaxOutputTokens,
            Temperature = request.Temperature ?? 1.0,
            TopP = request.TopP ?? 1.0,
            Text = request.Text.ValueKind == JsonValueKind.Object ? request.Text : DefaultText,
            Tools = request.Tools.ValueKind == JsonValueKind.Array ? request.Tools : EmptyList,
            ToolChoice = request.ToolChoice.ValueKind is JsonValueKind.String or JsonValueKind.Object ? request.ToolChoice : Auto,
            ParallelToolCalls = request.ParallelToolCalls ?? true,
            PreviousResponseId = request.PreviousResponseId,
            Store = request.Store ?? true,
            Metadata = request.Metadata ?? [],
            User = request.User,
        };

    private static readonly JsonElement DefaultText = JsonDocument.Parse("""{"format":{"type":"text"}}""").RootElement.Clone();
    private static readonly JsonElement EmptyList = JsonDocument.Parse("[]").RootElement.Clone();
    private static readonly JsonElement Auto = JsonDocument.Parse("\"auto\"").RootElement.Clone();

    /// <summary>Fields accepted without effect take only values that ask for nothing more, so a request for more is refused by name.</summary>
    private static void CheckAccepted(CreateResponseRequest request)
    {
        SamplingRequestParser.Require(request.MaxOutputTokens is null or >= 1, "max_output_tokens",
            $"max_output_tokens must be at least 1, got {request.MaxOutputTokens}.");
        SamplingRequestParser.Require(request.Truncation is null or "disabled", "truncation",
            "truncation: only 'disabled' is supported; a conversation longer than the context is refused, never cut.");
        SamplingRequestParser.Require(request.Include.ValueKind is JsonValueKind.Undefined or JsonValueKind.Null
            || (request.Include.ValueKind == JsonValueKind.Array && request.Include.GetArrayLength() == 0), "include",
            "include: this server adds no extra output to a response.");
        SamplingRequestParser.Require(request.Background is null or false, "background", "background: responses run in the foreground only.");
        if (request.Reasoning.ValueKind == JsonValueKind.Object && request.Reasoning.TryGetProperty("effort", out JsonElement effort)
            && effort.ValueKind == JsonValueKind.String && effort.GetString() != "none")
        {
            throw new ApiException(StatusCodes.Status400BadRequest,
                "Unsupported parameter: 'reasoning.effort' is not supported with this model: it does not reason (only \"none\" is accepted).",
                param: "reasoning.effort", code: "unsupported_parameter");
        }
    }
}
