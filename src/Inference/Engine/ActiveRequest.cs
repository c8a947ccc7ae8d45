using System.Threading.Channels;
using LlmServer.Inference.Sampling;
using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>A request the engine is running: the scheduler's view of it, its output so far, where its events go, and the weights it is bound to.</summary>
internal sealed class ActiveRequest(Request request, RequestOutput output, ChannelWriter<GenerationEvent> events, LoadedWeights weights)
{
    public Request Request { get; } = request;
    public RequestOutput Output { get; } = output;
    public ChannelWriter<GenerationEvent> Events { get; } = events;
    public LoadedWeights Weights { get; } = weights;

    /// <summary>Records the logprobs of the prompt tokens these rows of logits predict.</summary>
    /// <param name="logits">The rows, each <paramref name="width"/> floats (the model's head).</param>
    public void AddPromptLogprobs(Sampler sampler, PromptLogitRows rows, ReadOnlySpan<float> logits, int width)
    {
        int tokenCount = Weights.Served.Tokenizer.VocabSize;
        int topCount = Request.Sampling.PromptLogprobs ?? 0;
        for (int i = 0; i < rows.Count; i++)
        {
            int token = rows.FirstPosition + i + 1;
            // A request recomputed after preemption sees positions again that it already has.
            if (Output.NextPromptLogprob == token)
            {
                Output.AddPromptLogprob(sampler.PromptLogprob(logits.Slice(i * width, width), tokenCount, Request.TokenIds[token], topCount));
            }
        }
    }

    /// <summary>
    /// Picks the request's next token from its row of logits, touching only this request's state, so
    /// the rows of a step may be chosen on several threads at once; <see cref="Emit"/> then hands it on.
    /// </summary>
    public ChosenToken Choose(Sampler sampler, ReadOnlySpan<float> logits, int tokenCount)
    {
        try
        {
            ReadOnlySpan<ulong> allowed = Output.Constraint is { } constraint
                ? constraint.AllowedTokens(Request.Sampling.MaxTokens - Request.NumOutputTokens)
                : default;
            return new ChosenToken(sampler.Sample(logits, tokenCount, Request, Output.Random, Output.SuppressedTokens, Output.TextOffset, allowed), null);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new ChosenToken(null, e.Message);
        }
    }

    /// <summary>Appends a chosen token to the output (one request at a time: detokenizing shares the tokenizer) and turns it into the event its client sees.</summary>
    public GenerationEvent Emit(ChosenToken chosen)
    {
        try
        {
            // One request's bad row (NaN logits, say) fails that request alone, not the batch.
            return chosen.Token is { } token ? Output.Append(token) : Output.Finish(FinishReason.Error, chosen.ErrorMessage);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Output.Finish(FinishReason.Error, e.Message);
        }
    }
}

/// <summary>A request's token for this step, or why none could be chosen.</summary>
internal readonly record struct ChosenToken(GeneratedToken? Token, string? ErrorMessage);
