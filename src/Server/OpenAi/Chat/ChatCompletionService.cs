using System.Text.Json;
using LlmServer.ChatTemplates;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.StructuredOutput;
using LlmServer.Inference.Tokenization;
using LlmServer.Observability;
using LlmServer.OpenAi.Chat.ToolCalling;
using LlmServer.OpenAi.Generation;
using LlmServer.OpenAi.StructuredOutputs;

namespace LlmServer.OpenAi.Chat;

/// <summary>POST /v1/chat/completions: messages through the chat template, then one response or an SSE stream.</summary>
public sealed class ChatCompletionService(GenerationService generation, ResponseFormats responseFormats, ToolCallGrammars toolGrammars, RequestLog log)
{
    public async Task HandleAsync(ChatCompletionRequest request, HttpContext context)
    {
        CancellationToken aborted = context.RequestAborted;
        using PreparedChat prepared = Prepare(request, context, $"chatcmpl-{Guid.NewGuid():N}");
        (ServedModel model, IReadOnlyList<EngineSubmission> choices, ToolCallingRequest? tools, string id) =
            (prepared.Model, prepared.Choices, prepared.Tools, prepared.Id);
        bool legacy = tools?.Legacy ?? false;
        bool withLogprobs = request.Logprobs == true;
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        if (request.Stream ?? false)
        {
            await StreamAsync(context, model, choices, id, created, request.StreamOptions?.IncludeUsage ?? false, withLogprobs,
                choices.Select(_ => prepared.NewReader()).ToArray(), legacy, aborted);
            return;
        }

        ChoiceAccumulator[] accumulators = await generation.CollectAsync(choices, aborted);
        RecordOutcome(context, accumulators);
        var responseChoices = accumulators.Select((a, index) =>
        {
            // The same parser as the stream's, fed the whole text at once: both give the same content and calls.
            ToolCallReader? reader = prepared.NewReader();
            reader?.Feed(a.Text);
            reader?.Finish();
            return new ChatChoice(index, Message(a.Text, reader, legacy),
                withLogprobs ? Logprobs(a.Tokens, model.Tokenizer) : null,
                WireFinishReason(a.FinishReason!.Value, reader, legacy), a.StopReason);
        }).ToList();
        await context.Response.WriteAsJsonAsync(new ChatCompletionResponse(id, created, model.Name, responseChoices, UsageOf(accumulators))
            {
                SystemFingerprint = model.Fingerprint,
                PromptLogprobs = request.PromptLogprobs is { } alternatives
                    ? PromptLogprobsWire.Render(accumulators[0].PromptLogprobs!, alternatives, model.Tokenizer)
                    : null,
            },
            OpenAiJson.Options, aborted);
    }

    /// <summary>
    /// Everything before generation: the request checked, its messages rendered through the chat template and encoded, its
    /// sampling, response format and tools turned into engine submissions, and a place in the queue. The Responses API
    /// reaches the same model through here with its request translated into chat's.
    /// </summary>
    public PreparedChat Prepare(ChatCompletionRequest request, HttpContext context, string id)
    {
        CancellationToken aborted = context.RequestAborted;
        ServedModel model = generation.ResolveModel(request.Model);
        log.SetModel(context, model.Name);
        int n = SamplingRequestParser.ParseChoiceCount(request);
        bool stream = request.Stream ?? false;
        if (request.StreamOptions is not null && !stream)
        {
            throw ApiException.InvalidParameter("stream_options", "stream_options is only allowed when stream is true.");
        }
        ChatRequestFeatures.Check(request);
        GrammarConstraint? responseFormat = responseFormats.Parse(request.ResponseFormat);
        ToolCallingRequest? tools = ToolCallingRequest.Parse(request.Tools, request.ToolChoice, request.ParallelToolCalls, request.Functions, request.FunctionCall);
        ToolCallFamily family = ToolCallFamily.Of(model.ChatFormatter);
        GrammarConstraint? toolConstraint = tools is null ? null : toolGrammars.ConstraintFor(tools, family);
        int? logprobs = null;
        if (request.Logprobs == true)
        {
            logprobs = request.TopLogprobs ?? 0;
            SamplingRequestParser.Require(logprobs is >= 0 and <= SamplingRequestParser.MaxLogprobs, "top_logprobs",
                $"top_logprobs must be between 0 and {SamplingRequestParser.MaxLogprobs}, got {logprobs}.");
        }
        else if (request.TopLogprobs is not null)
        {
            throw ApiException.InvalidParameter("top_logprobs", "top_logprobs requires logprobs to be true.");
        }

        // A malformed message is a 400 even on a full server (a 429 would be retried by the SDKs);
        // the queue refuses before the messages are rendered and encoded (n choices of one prompt).
        // A template that takes tools gets them also under tool_choice "none", as vLLM passes them; the default
        // tool prompt describes them only when the reply may call them.
        JsonElement? offeredTools = tools?.Mode == ToolChoiceMode.None && !family.TemplateTakesTools ? null : tools?.TemplateTools ?? ChatMessages.Tools(request.Tools);
        (IReadOnlyList<ChatMessage> messages, JsonElement? templateTools) = ChatMessages.ForTemplate(request.Messages, model.ChatFormatter, offeredTools);
        EngineAdmission admission = generation.Admit(n);
        // The place in the queue goes back if anything after it refuses the request.
        try
        {
            string prompt;
            try
            {
                // The tools reach the template as vLLM passes them, also with tool_choice "none".
                prompt = model.ChatFormatter.Format(messages, request.AddGenerationPrompt ?? true, templateTools);
            }
            catch (ChatTemplateException e)
            {
                throw ApiException.InvalidParameter("messages", $"The chat template rejected the messages: {e.Message}");
            }
            IReadOnlyList<int> promptIds = PromptInput.ForModel(PromptInput.EncodePrompt(model, prompt, "messages", addSpecialTokens: false, aborted), model.Tokenizer);
            // max_completion_tokens wins, as in vLLM; a refusal names whichever of the two was used.
            (int? maxTokens, string maxTokensParam) = request.MaxCompletionTokens is { } completionTokens
                ? (completionTokens, "max_completion_tokens")
                : (request.MaxTokens, "max_tokens");
            // Unset sampling parameters take generation_config.json's values, max_new_tokens included, as vLLM's chat does.
            GenerationDefaults defaults = generation.SamplingDefaults(model);
            GrammarConstraint? constraint = ToolCallGrammars.WithResponseFormat(toolConstraint, responseFormat);
            // A reply held to a grammar from its first token ends where the grammar lets it, by end of sequence; the
            // default template's end-of-turn text could otherwise stop it inside a JSON string.
            IReadOnlyList<string> implicitStops = constraint is { Trigger: null } ? [] : model.ChatFormatter.ImplicitStopStrings;
            SamplingParameters sampling = SamplingRequestParser.Parse(request, model, defaults, promptIds.Count,
                maxTokens, defaultMaxTokens: defaults.MaxTokens, logprobs, implicitStops, promptParam: "messages", maxTokensParam);
            if (request.PromptLogprobs is { } promptLogprobs)
            {
                SamplingRequestParser.Require(promptLogprobs is >= 0 and <= SamplingRequestParser.MaxLogprobs, "prompt_logprobs",
                    $"prompt_logprobs must be between 0 and {SamplingRequestParser.MaxLogprobs}, got {promptLogprobs}.");
                // As vLLM: a chat stream has no place for them.
                SamplingRequestParser.Require(!stream, "prompt_logprobs", "prompt_logprobs are not available when stream is true.");
            }
            sampling = ResponseFormats.Constrain(sampling with { PromptLogprobs = request.PromptLogprobs }, constraint, model);
            ToolCallReader? NewReader() => tools is null || tools.Mode == ToolChoiceMode.None
                ? null
                : new ToolCallReader(family.CreateParser(tools.FunctionNames, constrained: toolConstraint is not null));

            log.SetTokens(context, promptIds.Count, completionTokens: null);
            log.SetPrompt(context, () => prompt);
            IReadOnlyList<EngineSubmission> choices = GenerationService.PlanChoices(id, model, [(promptIds, sampling)], n);
            return new PreparedChat(admission, id, model, choices, tools, NewReader);
        }
        catch
        {
            admission.Dispose();
            throw;
        }
    }

    private static ChatResponseMessage Message(string text, ToolCallReader? reader, bool legacy)
    {
        if (reader is null)
        {
            return new ChatResponseMessage("assistant", text);
        }
        IReadOnlyList<ToolCall> calls = reader.Calls;
        return legacy
            ? new ChatResponseMessage("assistant", reader.Content) { FunctionCall = calls.Count > 0 ? calls[0].Function : null }
            : new ChatResponseMessage("assistant", reader.Content) { ToolCalls = calls.Count > 0 ? calls : null };
    }

    /// <summary>"tool_calls" (or "function_call") when the model called and then stopped; a reply cut by max_tokens stays "length".</summary>
    private static string WireFinishReason(FinishReason reason, ToolCallReader? reader, bool legacy) =>
        reason == FinishReason.Stop && reader is { HasCalls: true }
            ? legacy ? "function_call" : "tool_calls"
            : ChoiceAccumulator.WireFinishReason(reason);

    /// <summary>A parsed piece as OpenAI streams it: content, a call's first delta (id, type, name, empty arguments), or an arguments fragment.</summary>
    private static ChatDelta? Delta(ParsedPiece piece, ToolCallReader reader, bool legacy) => piece.Kind switch
    {
        ParsedKind.Content => new ChatDelta(null, piece.Text),
        // The deprecated function_call holds one call: a second one (free decoding may write it) is dropped, never content.
        _ when legacy && piece.Index > 0 => null,
        ParsedKind.CallStart when legacy => new ChatDelta(null, null) { FunctionCall = new FunctionCallDelta(piece.Text, "") },
        ParsedKind.CallStart => new ChatDelta(null, null)
        {
            ToolCalls = [new ToolCallDelta(piece.Index, reader.CallId(piece.Index), "function", new FunctionCallDelta(piece.Text, ""))],
        },
        _ when legacy => new ChatDelta(null, null) { FunctionCall = new FunctionCallDelta(null, piece.Text) },
        _ => new ChatDelta(null, null) { ToolCalls = [new ToolCallDelta(piece.Index, null, null, new FunctionCallDelta(null, piece.Text))] },
    };

    private async Task StreamAsync(HttpContext context, ServedModel model, IReadOnlyList<EngineSubmission> choices, string id,
        long created, bool includeUsage, bool withLogprobs, ToolCallReader?[] readers, bool legacy, CancellationToken aborted)
    {
        var events = new ServerSentEvents(context.Response);
        var accumulators = choices.Select(_ => new ChoiceAccumulator()).ToArray();
        var pending = choices.Select(_ => new List<GeneratedToken>()).ToArray();
        // OpenAI's shape: no usage key unless asked for, then null until the last chunk carries it.
        Usage? usageSoFar = includeUsage ? StreamChunkUsage.Pending : null;
        ChatCompletionChunk Chunk(ChatChunkChoice choice) => new(id, created, model.Name, [choice], usageSoFar) { SystemFingerprint = model.Fingerprint };

        // OpenAI opens every choice with the assistant role and empty content.
        for (int index = 0; index < choices.Count; index++)
        {
            await events.WriteAsync(Chunk(new ChatChunkChoice(index, new ChatDelta("assistant", ""), null, null)), aborted);
        }
        await foreach (ChoiceEvent item in generation.GenerateAsync(choices, aborted))
        {
            if (ChoiceAccumulator.IsFailure(item.Event))
            {
                await events.WriteAsync(ChoiceAccumulator.Failure(item.Event).ToResponse(), aborted);
                await events.CompleteAsync(aborted);
                return;
            }
            accumulators[item.Index].Add(item.Event);
            pending[item.Index].AddRange(item.Event.Tokens);
            if (readers[item.Index] is { } reader)
            {
                var pieces = new List<ParsedPiece>(reader.Feed(item.Event.TextDelta));
                if (item.Event.IsFinal)
                {
                    pieces.AddRange(reader.Finish());
                }
                var deltas = pieces.Select(p => Delta(p, reader, legacy)).OfType<ChatDelta>().ToList();
                if (deltas.Count == 0 && item.Event.IsFinal && pending[item.Index].Count > 0 && withLogprobs)
                {
                    deltas.Add(new ChatDelta(null, ""));
                }
                foreach (ChatDelta delta in deltas)
                {
                    // The tokens' logprobs go with the first chunk written after them: the parser may hold their text back.
                    ChatLogprobs? logprobs = withLogprobs && pending[item.Index].Count > 0 ? Logprobs(pending[item.Index], model.Tokenizer) : null;
                    pending[item.Index].Clear();
                    await events.WriteAsync(Chunk(new ChatChunkChoice(item.Index, delta, logprobs, null)), aborted);
                }
            }
            else if (item.Event.TextDelta.Length > 0 || (item.Event.IsFinal && pending[item.Index].Count > 0 && withLogprobs))
            {
                ChatLogprobs? logprobs = withLogprobs ? Logprobs(pending[item.Index], model.Tokenizer) : null;
                pending[item.Index].Clear();
                await events.WriteAsync(Chunk(new ChatChunkChoice(item.Index, new ChatDelta(null, item.Event.TextDelta), logprobs, null)), aborted);
            }
            if (item.Event.FinishReason is { } reason)
            {
                await events.WriteAsync(Chunk(new ChatChunkChoice(item.Index, new ChatDelta(null, null), null,
                    WireFinishReason(reason, readers[item.Index], legacy), ChoiceAccumulator.WireStopReason(item.Event))), aborted);
            }
        }
        RecordOutcome(context, accumulators);
        if (includeUsage)
        {
            await events.WriteAsync(new ChatCompletionChunk(id, created, model.Name, [], UsageOf(accumulators)) { SystemFingerprint = model.Fingerprint }, aborted);
        }
        await events.CompleteAsync(aborted);
    }

    private void RecordOutcome(HttpContext context, IReadOnlyList<ChoiceAccumulator> choices)
    {
        Usage usage = UsageOf(choices);
        log.SetTokens(context, usage.PromptTokens, usage.CompletionTokens);
        log.SetCompletion(context, () => string.Join("\n", choices.Select(c => c.Text)));
    }

    private static Usage UsageOf(IReadOnlyList<ChoiceAccumulator> choices)
    {
        int prompt = choices[0].PromptTokens;
        int completion = choices.Sum(c => c.CompletionTokens);
        int cached = choices[0].CachedPromptTokens;
        return new Usage(prompt, completion, prompt + completion, cached > 0 ? new PromptTokensDetails(cached) : null);
    }

    private static ChatLogprobs Logprobs(IReadOnlyList<GeneratedToken> tokens, ITokenizer tokenizer) =>
        new(tokens.Select(t => new ChatTokenLogprob(tokenizer.TokenText(t.TokenId), t.Logprob!.Value, Bytes(tokenizer, t.TokenId),
            (t.TopLogprobs ?? []).Select(a => new ChatTopLogprob(tokenizer.TokenText(a.TokenId), a.Logprob, Bytes(tokenizer, a.TokenId))).ToArray())).ToArray());

    private static int[] Bytes(ITokenizer tokenizer, int tokenId)
    {
        ReadOnlySpan<byte> bytes = tokenizer.TokenBytes(tokenId);
        var result = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            result[i] = bytes[i];
        }
        return result;
    }
}
