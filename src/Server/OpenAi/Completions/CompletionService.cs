using System.Text.Json;
using LlmServer.Inference.Engine;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Tokenization;
using LlmServer.Observability;
using LlmServer.Inference.StructuredOutput;
using LlmServer.OpenAi.Generation;
using LlmServer.OpenAi.StructuredOutputs;

namespace LlmServer.OpenAi.Completions;

/// <summary>POST /v1/completions: prompt(s) in, one JSON response or an SSE stream out.</summary>
public sealed class CompletionService(GenerationService generation, ResponseFormats responseFormats, RequestLog log)
{
    private const int DefaultMaxTokens = 16;

    public async Task HandleAsync(CompletionRequest request, HttpContext context)
    {
        CancellationToken aborted = context.RequestAborted;
        ServedModel model = generation.ResolveModel(request.Model);
        log.SetModel(context, model.Name);
        if (request.Suffix is { Length: > 0 })
        {
            throw ApiException.InvalidParameter("suffix", "suffix is not supported by this model.");
        }
        int n = SamplingRequestParser.ParseChoiceCount(request);
        if (request.BestOf is { } bestOf && bestOf != n)
        {
            throw ApiException.InvalidParameter("best_of", "best_of is not supported; leave it unset or equal to n.");
        }
        bool echo = request.Echo ?? false;
        if (echo && request.Logprobs is not null)
        {
            throw ApiException.InvalidParameter("echo", "echo together with logprobs (prompt logprobs) is not supported.");
        }
        bool stream = request.Stream ?? false;
        if (request.StreamOptions is not null && !stream)
        {
            throw ApiException.InvalidParameter("stream_options", "stream_options is only allowed when stream is true.");
        }

        // The queue refuses before any prompt is encoded: prompts x n choices, counted from the JSON's shape.
        using EngineAdmission admission = generation.Admit(PromptInput.CountCompletionPrompts(request.Prompt) * n);
        GrammarConstraint? responseFormat = responseFormats.Parse(request.ResponseFormat);
        IReadOnlyList<IReadOnlyList<int>> prompts = PromptInput.ParseCompletionPrompt(request.Prompt, model, aborted);
        // Unset sampling parameters take generation_config.json's values; max_tokens keeps OpenAI's 16, as in vLLM.
        GenerationDefaults defaults = generation.SamplingDefaults(model);
        var planned = prompts.Select(p => PromptInput.ForModel(p, model.Tokenizer)).Select(ids => (ids, SamplingRequestParser.Parse(request, model, defaults, ids.Count, request.MaxTokens,
            DefaultMaxTokens, request.Logprobs, implicitStops: [], promptParam: "prompt")))
            .Select(p => (p.ids, ResponseFormats.Constrain(p.Item2, responseFormat, model))).ToList();
        log.SetTokens(context, planned.Sum(p => p.ids.Count), completionTokens: null);
        log.SetPrompt(context, () => string.Join("\n", prompts.Select(p => model.Tokenizer.Decode(p))));
        string id = $"cmpl-{Guid.NewGuid():N}";
        IReadOnlyList<EngineSubmission> choices = GenerationService.PlanChoices(id, model, planned, n);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        // Echo what the client sent, not the end-of-text an empty prompt is fed to the model as.
        string[] echoes = echo ? prompts.Select(p => model.Tokenizer.Decode(p)).ToArray() : [];
        string EchoFor(int choice) => echo ? echoes[choice / n] : "";

        if (stream)
        {
            await StreamAsync(context, model, choices, n, id, created, EchoFor, request.StreamOptions?.IncludeUsage ?? false, request.Logprobs is not null, aborted);
            return;
        }

        ChoiceAccumulator[] accumulators = await generation.CollectAsync(choices, aborted);
        RecordOutcome(context, accumulators, n);
        var responseChoices = accumulators.Select((a, index) => new CompletionChoice(index, EchoFor(index) + a.Text,
            request.Logprobs is not null ? Logprobs(a.Tokens, model.Tokenizer, EchoFor(index).Length) : null,
            ChoiceAccumulator.WireFinishReason(a.FinishReason!.Value), a.StopReason)).ToList();
        await context.Response.WriteAsJsonAsync(new CompletionResponse(id, created, model.Name, responseChoices, UsageOf(accumulators, n)) { SystemFingerprint = model.Fingerprint },
            OpenAiJson.Options, aborted);
    }

    /// <param name="n">Samples per prompt: choices p*n .. p*n+n-1 share prompt p, whose tokens count once.</param>
    private async Task StreamAsync(HttpContext context, ServedModel model, IReadOnlyList<EngineSubmission> choices, int n, string id,
        long created, Func<int, string> echoFor, bool includeUsage, bool withLogprobs, CancellationToken aborted)
    {
        var events = new ServerSentEvents(context.Response);
        var accumulators = choices.Select(_ => new ChoiceAccumulator()).ToArray();
        var pending = choices.Select(_ => new List<GeneratedToken>()).ToArray();
        // OpenAI's shape: no usage key unless asked for, then null until the last chunk carries it.
        Usage? usageSoFar = includeUsage ? StreamChunkUsage.Pending : null;

        // Echoed prompts go first, as their own chunk per choice.
        for (int index = 0; index < choices.Count; index++)
        {
            if (echoFor(index) is { Length: > 0 } echoed)
            {
                await events.WriteAsync(new CompletionChunk(id, created, model.Name, [new CompletionChoice(index, echoed, null, null)], usageSoFar) { SystemFingerprint = model.Fingerprint }, aborted);
            }
        }

        await foreach (ChoiceEvent item in generation.GenerateAsync(choices, aborted))
        {
            if (ChoiceAccumulator.IsFailure(item.Event))
            {
                await events.WriteAsync(ChoiceAccumulator.Failure(item.Event).ToResponse(), aborted);
                await events.CompleteAsync(aborted);
                return;
            }
            ChoiceAccumulator accumulator = accumulators[item.Index];
            accumulator.Add(item.Event);
            pending[item.Index].AddRange(item.Event.Tokens);
            if (item.Event.TextDelta.Length == 0 && !item.Event.IsFinal)
            {
                continue;
            }
            CompletionLogprobs? logprobs = withLogprobs ? Logprobs(pending[item.Index], model.Tokenizer, echoFor(item.Index).Length) : null;
            pending[item.Index].Clear();
            string? finish = item.Event.FinishReason is { } reason ? ChoiceAccumulator.WireFinishReason(reason) : null;
            var choice = new CompletionChoice(item.Index, item.Event.TextDelta, logprobs, finish, ChoiceAccumulator.WireStopReason(item.Event));
            await events.WriteAsync(new CompletionChunk(id, created, model.Name, [choice], usageSoFar) { SystemFingerprint = model.Fingerprint }, aborted);
        }
        RecordOutcome(context, accumulators, n);
        if (includeUsage)
        {
            await events.WriteAsync(new CompletionChunk(id, created, model.Name, [], UsageOf(accumulators, n)) { SystemFingerprint = model.Fingerprint }, aborted);
        }
        await events.CompleteAsync(aborted);
    }

    private void RecordOutcome(HttpContext context, IReadOnlyList<ChoiceAccumulator> choices, int n)
    {
        Usage usage = UsageOf(choices, n);
        log.SetTokens(context, usage.PromptTokens, usage.CompletionTokens);
        log.SetCompletion(context, () => string.Join("\n", choices.Select(c => c.Text)));
    }

    /// <summary>Prompt tokens count once per prompt, not once per sample of it, as OpenAI counts them.</summary>
    private static Usage UsageOf(IReadOnlyList<ChoiceAccumulator> choices, int n)
    {
        int prompt = choices.Where((_, index) => index % n == 0).Sum(c => c.PromptTokens);
        int completion = choices.Sum(c => c.CompletionTokens);
        int cached = choices.Where((_, index) => index % n == 0).Sum(c => c.CachedPromptTokens);
        return new Usage(prompt, completion, prompt + completion, cached > 0 ? new PromptTokensDetails(cached) : null);
    }

    private static CompletionLogprobs Logprobs(IReadOnlyList<GeneratedToken> tokens, ITokenizer tokenizer, int offsetBase) =>
        new(tokens.Select(t => offsetBase + t.TextOffset).ToArray(),
            tokens.Select(t => t.Logprob!.Value).ToArray(),
            tokens.Select(t => tokenizer.TokenText(t.TokenId)).ToArray(),
            tokens.Select(t => (IReadOnlyDictionary<string, float>)TopDictionary(t, tokenizer)).ToArray());

    /// <summary>
    /// The top alternatives plus the sampled token itself, so there may be logprobs + 1 entries,
    /// as OpenAI documents: a client can always look up the token it got.
    /// </summary>
    private static Dictionary<string, float> TopDictionary(GeneratedToken token, ITokenizer tokenizer)
    {
        var top = new Dictionary<string, float>();
        foreach (TokenLogprob alternative in token.TopLogprobs ?? [])
        {
            // Two ids can decode to the same text (partial UTF-8); the likelier one keeps the key.
            top.TryAdd(tokenizer.TokenText(alternative.TokenId), alternative.Logprob);
        }
        top.TryAdd(tokenizer.TokenText(token.TokenId), token.Logprob!.Value);
        return top;
    }
}
