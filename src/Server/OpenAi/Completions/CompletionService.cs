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
        bool echo = request.Echo ?? false;
        bool stream = request.Stream ?? false;
        if (request.StreamOptions is not null && !stream)
        {
            throw ApiException.InvalidParameter("stream_options", "stream_options is only allowed when stream is true.");
        }
        // Candidates per prompt: best_of of them run, the n likeliest are returned.
        int candidates = request.BestOf ?? n;
        if (candidates != n)
        {
            SamplingRequestParser.Require(candidates > n && candidates <= SamplingRequestParser.MaxChoices, "best_of",
                $"best_of must be at least n ({n}) and at most {SamplingRequestParser.MaxChoices}, got {candidates}.");
            SamplingRequestParser.Require(!stream, "best_of", "best_of greater than n cannot be streamed.");
        }
        // max_tokens 0 with echo scores the prompt alone (lm-eval's loglikelihood): one token is generated and dropped, as in vLLM.
        bool promptOnly = request.MaxTokens == 0;
        SamplingRequestParser.Require(!promptOnly || echo, "max_tokens", "max_tokens must be at least 1, or 0 together with echo: true.");
        if (request.PromptLogprobs is { } askedPromptLogprobs)
        {
            SamplingRequestParser.Require(askedPromptLogprobs is >= 0 and <= SamplingRequestParser.MaxLogprobs, "prompt_logprobs",
                $"prompt_logprobs must be between 0 and {SamplingRequestParser.MaxLogprobs}, got {askedPromptLogprobs}.");
        }
        int? echoedLogprobs = echo ? request.Logprobs : null;
        int? promptLogprobs = echoedLogprobs is null && request.PromptLogprobs is null
            ? null
            : Math.Max(echoedLogprobs ?? 0, request.PromptLogprobs ?? 0);
        // Ranking candidates needs each sampled token's logprob, asked for or not.
        int? engineLogprobs = candidates > n ? request.Logprobs ?? 0 : request.Logprobs;

        // The queue refuses before any prompt is encoded: prompts x n choices, counted from the JSON's shape.
        using EngineAdmission admission = generation.Admit(PromptInput.CountCompletionPrompts(request.Prompt) * candidates);
        GrammarConstraint? responseFormat = responseFormats.Parse(request.ResponseFormat);
        IReadOnlyList<IReadOnlyList<int>> prompts = PromptInput.ParseCompletionPrompt(request.Prompt, model, aborted);
        // Unset sampling parameters take generation_config.json's values; max_tokens keeps OpenAI's 16, as in vLLM.
        GenerationDefaults defaults = generation.SamplingDefaults(model);
        var planned = prompts.Select(p => PromptInput.ForModel(p, model.Tokenizer)).Select(ids => (ids, SamplingRequestParser.Parse(request, model, defaults, ids.Count, promptOnly ? 1 : request.MaxTokens,
            DefaultMaxTokens, engineLogprobs, implicitStops: [], promptParam: "prompt") with { PromptLogprobs = promptLogprobs }))
            .Select(p => (p.ids, ResponseFormats.Constrain(p.Item2, responseFormat, model))).ToList();
        log.SetTokens(context, planned.Sum(p => p.ids.Count), completionTokens: null);
        log.SetPrompt(context, () => string.Join("\n", prompts.Select(p => model.Tokenizer.Decode(p))));
        string id = $"cmpl-{Guid.NewGuid():N}";
        IReadOnlyList<EngineSubmission> choices = GenerationService.PlanChoices(id, model, planned, candidates);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        // Echo what the client sent, not the end-of-text an empty prompt is fed to the model as.
        string[] echoes = echo ? prompts.Select(p => model.Tokenizer.Decode(p)).ToArray() : [];
        string EchoFor(int choice) => echo ? echoes[choice / candidates] : "";
        var shape = new ChoiceShape(model.Tokenizer, request.Logprobs, echoedLogprobs, request.PromptLogprobs, promptOnly,
            choice => planned[choice / candidates].ids, EchoFor);

        if (stream)
        {
            await StreamAsync(context, model, choices, n, id, created, shape, request.StreamOptions?.IncludeUsage ?? false, aborted);
            return;
        }

        ChoiceAccumulator[] accumulators = await generation.CollectAsync(choices, aborted);
        RecordOutcome(context, accumulators, candidates, promptOnly);
        // Per prompt, the n candidates the model found likeliest, likeliest first.
        IEnumerable<int> chosen = candidates == n
            ? Enumerable.Range(0, accumulators.Length)
            : Enumerable.Range(0, planned.Count).SelectMany(p => Enumerable.Range(p * candidates, candidates)
                .OrderByDescending(c => accumulators[c].CumulativeLogprob).Take(n));
        var responseChoices = chosen.Select((candidate, index) => shape.Whole(index, candidate, accumulators[candidate])).ToList();
        await context.Response.WriteAsJsonAsync(new CompletionResponse(id, created, model.Name, responseChoices, UsageOf(accumulators, candidates, promptOnly))
            { SystemFingerprint = model.Fingerprint }, OpenAiJson.Options, aborted);
    }

    /// <param name="n">Samples per prompt: choices p*n .. p*n+n-1 share prompt p, whose tokens count once.</param>
    private async Task StreamAsync(HttpContext context, ServedModel model, IReadOnlyList<EngineSubmission> choices, int n, string id,
        long created, ChoiceShape shape, bool includeUsage, CancellationToken aborted)
    {
        var events = new ServerSentEvents(context.Response);
        var accumulators = choices.Select(_ => new ChoiceAccumulator()).ToArray();
        var pending = choices.Select(_ => new List<GeneratedToken>()).ToArray();
        // OpenAI's shape: no usage key unless asked for, then null until the last chunk carries it.
        Usage? usageSoFar = includeUsage ? StreamChunkUsage.Pending : null;
        CompletionChunk Chunk(CompletionChoice choice) => new(id, created, model.Name, [choice], usageSoFar) { SystemFingerprint = model.Fingerprint };

        // Echoed prompts go first, as their own chunk per choice; one that carries the prompt's logprobs waits for them.
        if (!shape.PromptPartNeedsLogprobs)
        {
            for (int index = 0; index < choices.Count; index++)
            {
                if (shape.PromptPart(index, null) is { } echoed)
                {
                    await events.WriteAsync(Chunk(echoed), aborted);
                }
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
            if (item.Event.PromptLogprobs is { } computed && shape.PromptPart(item.Index, computed) is { } promptPart)
            {
                await events.WriteAsync(Chunk(promptPart), aborted);
            }
            if (shape.PromptOnly)
            {
                if (item.Event.IsFinal)
                {
                    await events.WriteAsync(Chunk(new CompletionChoice(item.Index, "", null, "length")), aborted);
                }
                continue;
            }
            pending[item.Index].AddRange(item.Event.Tokens);
            if (item.Event.TextDelta.Length == 0 && !item.Event.IsFinal)
            {
                continue;
            }
            CompletionLogprobs? logprobs = shape.TokensPart(item.Index, pending[item.Index]);
            pending[item.Index].Clear();
            string? finish = item.Event.FinishReason is { } reason ? ChoiceAccumulator.WireFinishReason(reason) : null;
            await events.WriteAsync(Chunk(new CompletionChoice(item.Index, item.Event.TextDelta, logprobs, finish, ChoiceAccumulator.WireStopReason(item.Event))), aborted);
        }
        RecordOutcome(context, accumulators, n, shape.PromptOnly);
        if (includeUsage)
        {
            await events.WriteAsync(new CompletionChunk(id, created, model.Name, [], UsageOf(accumulators, n, shape.PromptOnly)) { SystemFingerprint = model.Fingerprint }, aborted);
        }
        await events.CompleteAsync(aborted);
    }

    private void RecordOutcome(HttpContext context, IReadOnlyList<ChoiceAccumulator> choices, int n, bool promptOnly)
    {
        Usage usage = UsageOf(choices, n, promptOnly);
        log.SetTokens(context, usage.PromptTokens, usage.CompletionTokens);
        log.SetCompletion(context, () => promptOnly ? "" : string.Join("\n", choices.Select(c => c.Text)));
    }

    /// <summary>
    /// Prompt tokens count once per prompt, not once per sample of it, as OpenAI counts them; completion tokens
    /// count for every candidate, returned or not. A prompt scored alone (max_tokens 0) completes nothing.
    /// </summary>
    private static Usage UsageOf(IReadOnlyList<ChoiceAccumulator> choices, int n, bool promptOnly)
    {
        int prompt = choices.Where((_, index) => index % n == 0).Sum(c => c.PromptTokens);
        int completion = promptOnly ? 0 : choices.Sum(c => c.CompletionTokens);
        int cached = choices.Where((_, index) => index % n == 0).Sum(c => c.CachedPromptTokens);
        return new Usage(prompt, completion, prompt + completion, cached > 0 ? new PromptTokensDetails(cached) : null);
    }
}
