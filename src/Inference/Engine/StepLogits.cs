using LlmServer.Inference.Scheduling;

namespace LlmServer.Inference.Engine;

/// <summary>
/// What one forward pass hands back: the requests that sample, with their logits as consecutive rows of the
/// head's width, and the rows of prompt positions whose logprobs were asked for, as consecutive rows of their own.
/// </summary>
public sealed record StepLogits(IReadOnlyList<Request> Sampling, ReadOnlyMemory<float> Logits,
    IReadOnlyList<PromptLogitRows> Prompt, ReadOnlyMemory<float> PromptLogits);

/// <summary>
/// <paramref name="Count"/> rows of prompt logits of one request from <paramref name="FirstRow"/> on: the row of position
/// <paramref name="FirstPosition"/> + i gives the logprob of prompt token <paramref name="FirstPosition"/> + i + 1.
/// </summary>
public readonly record struct PromptLogitRows(Request Request, int FirstPosition, int Count, int FirstRow);
